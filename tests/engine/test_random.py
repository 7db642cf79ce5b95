import numpy as np

from macrobatch.engine import random, setSeed, toHost
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
