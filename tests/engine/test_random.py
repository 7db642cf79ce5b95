import numpy as np
import pytest

from macrobatch.engine import backend, random, setSeed, toDevice, toHost
from macrobatch.engine.init import initWeights


def test_one_seed_call_makes_init_shuffles_and_masks_reproducible():
    def draw():
        setSeed(42)
        return (toHost(initWeights((3, 4), 3, 4)), toHost(random.permutation(10)),
                toHost(random.uniform((5,), np.float32)))
    for a, b in zip(draw(), draw()):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_weights():
    setSeed(1)
    a = toHost(initWeights((8, 8), 8, 8))
    setSeed(2)
    assert not np.array_equal(a, toHost(initWeights((8, 8), 8, 8)))


def test_init_schemes_have_their_scales():
    setSeed(0)
    he = toHost(initWeights((400, 400), 400, 400, "he"))
    assert abs(he.std() - np.sqrt(2 / 400)) < 0.005 and he.dtype == np.float32
    xav = toHost(initWeights((400, 400), 400, 400, "xavier"))
    assert abs(xav).max() <= np.sqrt(6 / 800)
    uni = toHost(initWeights((400, 400), 400, 400, "uniform"))
    assert abs(uni).max() <= 1 / np.sqrt(400)


def noisy(values, std, seed):
    setSeed(seed)
    ary = toDevice(values.copy())  # toDevice may hand NumPy arrays on as they are
    random.addNormal(ary, std)
    return toHost(ary)


def test_add_normal_adds_seeded_gaussian_noise_in_place():
    """addNormal adds std * N(0, 1) to every value in place (several CPU blocks here): the added values have
    mean 0 and standard deviation std, the same seed gives the same noise, blocks are not copies of each other."""
    values = np.full(3 * random.noiseBlock + 5, 2.0, np.float32)
    added = noisy(values, 0.5, 3) - 2.0
    assert abs(added.mean()) < 0.005 and abs(added.std() - 0.5) < 0.005
    np.testing.assert_array_equal(noisy(values, 0.5, 3), added + 2.0)
    assert not np.array_equal(noisy(values, 0.5, 4), added + 2.0)
    block = random.noiseBlock
    assert abs(np.corrcoef(added[:block], added[block:2 * block])[0, 1]) < 0.01


@pytest.mark.skipif(backend.isCuda, reason="the CPU blocks are the NumPy path; CuPy draws in one kernel")
def test_add_normal_ignores_the_thread_count():
    """The CPU blocks draw from their own streams: one worker or two give the same noise."""
    from macrobatch.engine import parallel
    values = np.zeros(2 * random.noiseBlock + 7, np.float64)
    saved = parallel.workers
    try:
        parallel.workers = 1
        one = noisy(values, 1.0, 5)
        parallel.workers = 2
        two = noisy(values, 1.0, 5)
    finally:
        parallel.workers = saved
    np.testing.assert_array_equal(one, two)
