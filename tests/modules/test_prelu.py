import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.module import loadModel
from macrobatch.modules.prelu import PRelu


def randn(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def randomSlopes(mod, seed=3):
    """Distinct slopes per map, some negative and some above 1, so a slope read from the wrong map shows."""
    slopes = mod.vars["slopes"]
    slopes.data[...] = toDevice(np.random.default_rng(seed).uniform(-0.5, 1.5, slopes.shape), slopes.dtype)
    return mod


@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 3, 2), (2, 4, 5)], ids=["vector", "image", "sequence"])
@pytest.mark.parametrize("sharedAlpha", [False, True], ids=["per-map", "shared"])
def test_prelu_input_and_slope_gradients_match_finite_differences(shape, sharedAlpha):
    mod = randomSlopes(PRelu(4, sharedAlpha=sharedAlpha).cast(np.float64))
    checkModuleGrads(mod, randn(shape, 0, np.float64))


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6, 5)], ids=["vector", "image"])
@pytest.mark.parametrize("sharedAlpha", [False, True], ids=["per-map", "shared"])
def test_prelu_matches_torch(shape, sharedAlpha):
    torch = pytest.importorskip("torch")
    mod = randomSlopes(PRelu(3, sharedAlpha=sharedAlpha))
    ref = torch.nn.PReLU(num_parameters=1 if sharedAlpha else 3)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(toHost(mod.vars["slopes"].data)))
    x, g = randn(shape, 1), randn(shape, 2)
    tx = torch.from_numpy(x).requires_grad_()
    ref(tx).backward(torch.from_numpy(g))
    got = {"output": toHost(mod(toDevice(x))), "input gradient": toHost(mod.backward(toDevice(g))),
           "slope gradient": toHost(mod.vars["slopes"].grad)}
    want = {"output": ref(tx).detach().numpy(), "input gradient": tx.grad.numpy(),
            "slope gradient": ref.weight.grad.numpy()}
    for key, value in got.items():  # the slope gradient sums many products: float32 rounding adds up
        np.testing.assert_allclose(value, want[key], rtol=1e-5, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("sharedAlpha", [False, True], ids=["per-map", "shared"])
def test_prelu_in_float16_matches_float32(sharedAlpha):
    # the float16 kernels compile and compute: the same (float16-exact) inputs and slopes in float32 give
    # the reference, within a few float16 steps (the slope gradient sums 40 products)
    x, g = randn((4, 3, 5, 2), 1, np.float16), randn((4, 3, 5, 2), 2, np.float16)
    results = {}
    for dtype in (np.float16, np.float32):
        mod = randomSlopes(PRelu(3, sharedAlpha=sharedAlpha).cast(np.float16)).cast(dtype)
        y = mod(toDevice(x, dtype))
        gx = mod.backward(toDevice(g, dtype))
        results[dtype] = [toHost(a).astype(np.float32) for a in (y, gx, mod.vars["slopes"].grad)]
    for key, half, single in zip(("output", "input gradient", "slope gradient"), *results.values()):
        np.testing.assert_allclose(half, single, rtol=4e-3, atol=1e-2, err_msg=key)


def test_prelu_starts_from_init_with_one_slope_per_map_or_one_shared():
    assert PRelu(5).vars["slopes"].shape == (5,)
    np.testing.assert_array_equal(toHost(PRelu(5).vars["slopes"].data), np.full(5, 0.25, np.float32))
    shared = PRelu(5, init=0.1, sharedAlpha=True)
    np.testing.assert_array_equal(toHost(shared.vars["slopes"].data), np.array([0.1], np.float32))
    assert shared.paramCount() == 1


def test_prelu_slope_gradients_accumulate_until_zeroed():
    mod = PRelu(3)
    x, g = toDevice(randn((4, 3, 2, 2), 0)), toDevice(randn((4, 3, 2, 2), 1))
    mod(x)
    mod.backward(g)
    once = toHost(mod.vars["slopes"].grad).copy()
    mod(x)
    mod.backward(g)
    np.testing.assert_allclose(toHost(mod.vars["slopes"].grad), 2 * once, rtol=1e-6)
    mod.zeroGradParams()
    mod(x)
    mod.backward(g)
    np.testing.assert_allclose(toHost(mod.vars["slopes"].grad), once, rtol=1e-6)


def test_prelu_survives_save_and_load_model(tmp_path):
    mod = randomSlopes(PRelu(4, init=0.1, sharedAlpha=False, name="act"))
    mod.save(tmp_path / "prelu.h5")
    loaded = loadModel(tmp_path / "prelu.h5")
    assert type(loaded) is PRelu and loaded.name == "act"
    np.testing.assert_array_equal(toHost(loaded.vars["slopes"].data), toHost(mod.vars["slopes"].data))
    x = toDevice(randn((2, 4, 3, 3), 0))
    np.testing.assert_array_equal(toHost(loaded(x)), toHost(mod(x)))


def test_prelu_rejects_input_with_the_wrong_map_count_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"PRelu 'act': expected input of shape \(batch, 3, \.\.\.\), got \(2, 4, 5\)"):
        PRelu(3, name="act")(toDevice(np.zeros((2, 4, 5), np.float32)))


def test_prelu_rejects_input_without_a_map_axis():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 1, \.\.\.\), got \(6,\)"):
        PRelu(1, sharedAlpha=True)(toDevice(np.zeros(6, np.float32)))


def test_prelu_rejects_input_of_another_dtype():
    with pytest.raises(DtypeError, match="float64"):
        PRelu(3)(toDevice(np.zeros((2, 3), np.float64)))


@pytest.mark.parametrize("maps", [0, -2, 2.5, True])
def test_prelu_map_count_must_be_a_positive_integer(maps):
    with pytest.raises(ValueError, match="maps must be a positive integer"):
        PRelu(maps)
