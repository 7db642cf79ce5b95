"""Helpers shared by the normalisation tests, as fixtures (test files do not import each other)."""
import numpy as np
import pytest


def _randomAffine(mod, seed=3):
    """Non-trivial scale and bias, so a wrong affine term cannot hide behind scale 1 and bias 0."""
    rng = np.random.default_rng(seed)
    mod.vars["scale"].data[...] = rng.uniform(0.5, 1.5, mod.maps)
    mod.vars["bias"].data[...] = rng.standard_normal(mod.maps)
    return mod


def _trainSteps(mod, shape, steps=3, dtype=np.float64):
    """A few train-mode forward passes on shifted, scaled data, to move the running statistics."""
    rng = np.random.default_rng(7)
    for _ in range(steps):
        mod(rng.normal(2.0, 3.0, shape).astype(dtype))


@pytest.fixture
def randomAffine():
    return _randomAffine


@pytest.fixture
def trainSteps():
    return _trainSteps
