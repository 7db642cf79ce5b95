"""macrobatch: a handler-based training engine on raw CUDA arrays (CuPy), NumPy without a GPU.

The repository root is the ``macrobatch`` package: ``engine/``, ``modules/``, ``costs/``,
``optimizers/``, ``handlers/``, ``datasets/``, ``deploy/`` and ``cli/`` are its subpackages.
"""
import re

from setuptools import setup

version = re.search(r'^__version__ = "(.+)"', open("__init__.py", encoding="utf-8").read(), re.M).group(1)
subpackages = ["cli", "engine", "modules", "costs", "costs.metrics", "optimizers", "optimizers.schedules", "handlers",
               "handlers.callbacks", "datasets", "deploy", "privacy"]

setup(
    name="macrobatch",
    version=version,
    description="Handler-based neural network training engine on CuPy arrays, with a NumPy fallback",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    package_dir={"macrobatch": "."},
    packages=["macrobatch"] + [f"macrobatch.{p}" for p in subpackages],
    package_data={"macrobatch.datasets": ["digits.csv.gz", "LICENSE.digits"]},
    install_requires=["numpy>=1.22", "h5py>=3.0", "tqdm>=4.0", "threadpoolctl>=3.1"],
    extras_require={
        "cuda12": ["cupy-cuda12x>=13"],
        "cuda13": ["cupy-cuda13x>=13"],
        "plot": ["matplotlib>=3.5"],
        "images": ["Pillow>=9"],
        "bfloat16": ["ml_dtypes>=0.5"],
        "onnx": ["onnx>=1.16", "onnxruntime>=1.18"],
        "mpi": ["mpi4py>=4.0"],
        "test": ["pytest>=7", "hypothesis>=6"],
        "dev": ["pytest>=7", "hypothesis>=6", "torch==2.13.0", "matplotlib>=3.5", "Pillow>=9", "mpi4py>=4.0",
                "ml_dtypes>=0.5", "onnx>=1.16", "onnxruntime>=1.18",
                "onnxscript>=0.7", "opacus==1.6.0"],
    },
    entry_points={"console_scripts": ["macrobatch=macrobatch.cli:main"]},
)
