"""Every test starts from the same seed; tests marked ``cuda`` are skipped unless the backend is CuPy."""
import pytest

from macrobatch.engine import backend, setSeed


@pytest.fixture(autouse=True)
def seeded():
    setSeed(1234)


def pytest_collection_modifyitems(config, items):
    if backend.isCuda:
        return
    skip = pytest.mark.skip(reason="needs the CuPy backend on a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
