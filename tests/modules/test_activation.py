import json
import warnings

import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.activation import Activation, activations
from macrobatch.modules.module import buildFromBlueprint, loadModel

names = ["relu", "leakyRelu", "sigmoid", "tanh", "gelu", "swish", "elu", "selu", "softPlus", "clip"]

# id -> (activation, constructor arguments, torch reference given torch.nn.functional); the arguments
# are chosen off their defaults so that a parameter read wrongly (or not at all) shows
cases = {
    "relu": ("relu", {}, lambda F: F.relu),
    "leakyRelu": ("leakyRelu", dict(slope=0.2), lambda F: lambda x: F.leaky_relu(x, 0.2)),
    "leakyRelu-negative-slope": ("leakyRelu", dict(slope=-0.5), lambda F: lambda x: F.leaky_relu(x, -0.5)),
    "leakyRelu-steep-slope": ("leakyRelu", dict(slope=1.5), lambda F: lambda x: F.leaky_relu(x, 1.5)),
    "sigmoid": ("sigmoid", {}, lambda F: F.sigmoid),
    "tanh": ("tanh", {}, lambda F: F.tanh),
    "gelu": ("gelu", {}, lambda F: lambda x: F.gelu(x, approximate="tanh")),
    "swish": ("swish", {}, lambda F: F.silu),
    "silu": ("silu", {}, lambda F: F.silu),
    "elu": ("elu", {}, lambda F: F.elu),
    "elu-alpha": ("elu", dict(alpha=2.5), lambda F: lambda x: F.elu(x, alpha=2.5)),
    "selu": ("selu", {}, lambda F: F.selu),
    "softPlus": ("softPlus", {}, lambda F: F.softplus),
    "softPlus-beta-threshold": ("softPlus", dict(beta=2.0, threshold=3.0),
                                lambda F: lambda x: F.softplus(x, beta=2.0, threshold=3.0)),
    "clip": ("clip", {}, lambda F: F.hardtanh),
    "clip-range": ("clip", dict(low=-0.5, high=2.0), lambda F: lambda x: F.hardtanh(x, -0.5, 2.0)),
}


def test_the_table_holds_every_documented_activation():
    assert sorted(activations) == sorted(names)


@pytest.mark.parametrize("case", cases.values(), ids=cases.keys())
def test_activation_gradients_match_finite_differences(case):
    # standard normal inputs: none within eps of a kink (0, clip's bounds, softPlus' threshold / beta)
    name, kwargs, _ = case
    x = np.random.default_rng(0).standard_normal((3, 4, 2))
    checkModuleGrads(Activation(name, **kwargs), x)


def againstTorch(case, x, g):
    """The activation of case and its torch reference, run in float64 on the same float32 inputs, forward
    on x and backward from g: (y, gx) of the module and of torch, as host arrays."""
    torch = pytest.importorskip("torch")
    name, kwargs, reference = case
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    ty = reference(torch.nn.functional)(tx)
    ty.backward(torch.from_numpy(g.astype(np.float64)))
    mod = Activation(name, **kwargs)
    return toHost(mod(toDevice(x))), toHost(mod.backward(toDevice(g))), ty.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("case", cases.values(), ids=cases.keys())
def test_activation_matches_torch(case):
    # torch runs in float64 on the same float32 inputs: float32 torch itself is off by up to 1e-6
    # in gelu's negative tail, where 1 + tanh cancels
    x = (3 * np.random.default_rng(1).standard_normal((4, 3, 5))).astype(np.float32)
    g = np.random.default_rng(2).standard_normal((4, 3, 5)).astype(np.float32)
    y, gx, ty, tgx = againstTorch(case, x, g)
    assert y.dtype == gx.dtype == np.float32
    np.testing.assert_allclose(y, ty, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(gx, tgx, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("case", cases.values(), ids=cases.keys())
def test_activation_never_makes_nan_finite_as_torch(case):
    # the output is NaN exactly where torch's is (where the input is); the input gradient is NaN wherever
    # torch's is and wherever the output gradient is (multiplied, never dropped), and nowhere no NaN went
    # in. Where the input alone is NaN torch's own gradient differs between its vectorised and scalar
    # loops (elu: NaN or 1, hardtanh: 0 or 1), so that is left to the bounds above
    rng = np.random.default_rng(3)
    x = (3 * rng.standard_normal((4, 3, 5))).astype(np.float32)
    g = rng.standard_normal((4, 3, 5)).astype(np.float32)
    x[0, :, :3] = np.nan
    g[1:3, :, 2:] = np.nan
    g[0, 0] = np.nan  # NaN in both
    y, gx, ty, tgx = againstTorch(case, x, g)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    np.testing.assert_array_equal(np.isnan(ty), np.isnan(x))
    clean = ~np.isnan(x) & ~np.isnan(g)
    assert np.isnan(gx[np.isnan(tgx) | np.isnan(g)]).all() and not np.isnan(gx[clean]).any()
    np.testing.assert_allclose(y[clean], ty[clean], rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(gx[clean], tgx[clean], rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("case", cases.values(), ids=cases.keys())
def test_activation_in_16_bits_matches_float32(case, halfDtype, halfParity):
    # 16-bit kernels compile and compute: the same (16-bit-exact) inputs in float32 give the reference
    name, kwargs, _ = case
    halfParity(lambda: Activation(name, **kwargs), (4, 3, 5), halfDtype, seed=4)


def _logSigmoid(t):
    return -np.logaddexp(0, -t)


# float64 references written to be exact in both tails, for inputs far beyond where naive forms break
tailReferences = {
    "swish": (dict(), lambda x: x * np.exp(_logSigmoid(x)),
              lambda x: np.exp(_logSigmoid(x)) * (1 + x * np.exp(_logSigmoid(-x)))),
    "elu": (dict(alpha=1.5), lambda x: np.where(x > 0, x, 1.5 * np.expm1(np.minimum(x, 0))),
            lambda x: np.where(x > 0, 1, 1.5 * np.exp(np.minimum(x, 0)))),
    "selu": (dict(), lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0))),
             lambda x: 1.0507009873554805 * np.where(x > 0, 1, 1.6732632423543772 * np.exp(np.minimum(x, 0)))),
    # a threshold beyond every input: the log1p form itself must hold in both tails
    "softPlus": (dict(beta=0.5, threshold=1e30), lambda x: np.logaddexp(0, 0.5 * x) / 0.5,
                 lambda x: np.exp(_logSigmoid(0.5 * x))),
    "clip": (dict(low=-2.0, high=3.0), lambda x: np.clip(x, -2, 3), lambda x: ((x > -2) & (x < 3)).astype(float)),
}


@pytest.mark.parametrize("name", tailReferences)
def test_activation_keeps_float32_relative_precision_in_both_tails_without_overflow(name):
    kwargs, forward, backward = tailReferences[name]
    x32 = np.array([[-1e4, -500, -80, -30, -10, -1e-3, 1e-3, 10, 30, 80, 500, 1e4]], np.float32)
    x = x32.astype(np.float64)
    mod = Activation(name, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = toHost(mod(toDevice(x32)))
        gx = toHost(mod.backward(toDevice(np.ones_like(x32))))
    # atol only below float32's normal range (1.2e-38), where no relative precision is left
    np.testing.assert_allclose(y, forward(x), rtol=1e-6, atol=1e-40)
    np.testing.assert_allclose(gx, backward(x), rtol=1e-6, atol=1e-40)


def test_softplus_is_the_identity_above_its_threshold_as_torch():
    mod = Activation("softPlus", beta=2.0, threshold=4.0)
    x = np.array([[1.99, 2.01, 50.0]], np.float32)
    y = toHost(mod(toDevice(x)))
    assert y[0, 0] != x[0, 0] and (y[0, 1:] == x[0, 1:]).all()
    np.testing.assert_array_equal(toHost(mod.backward(toDevice(np.full_like(x, 3.0))))[0, 1:], [3.0, 3.0])


def test_clip_gradient_is_zero_at_and_beyond_its_bounds_as_torch_hardtanh():
    mod = Activation("clip", low=-1.0, high=2.0)
    y = toHost(mod(toDevice(np.array([[-3.0, -1.0, 0.5, 2.0, 7.0]], np.float32))))
    np.testing.assert_array_equal(y, [[-1, -1, 0.5, 2, 2]])
    np.testing.assert_array_equal(toHost(mod.backward(toDevice(np.full((1, 5), 4.0, np.float32)))), [[0, 0, 4, 0, 0]])


@pytest.mark.parametrize("name", names)
def test_activation_leaves_its_input_and_output_unchanged(name):
    keep = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    x = toDevice(keep)
    mod = Activation(name)
    y = mod(x)
    out = toHost(y).copy()
    mod.backward(toDevice(np.ones_like(keep)))
    np.testing.assert_array_equal(toHost(x), keep)
    np.testing.assert_array_equal(toHost(y), out)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("name", names)
def test_activation_keeps_the_input_dtype(name, dtype):
    mod = Activation(name)
    x = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    assert mod(toDevice(x)).dtype == dtype and mod.backward(toDevice(np.ones_like(x))).dtype == dtype


def test_sigmoid_saturates_on_huge_inputs_without_overflow_warnings():
    x = np.array([[-1e4, -80.0, 0.0, 80.0, 1e4]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = toHost(Activation("sigmoid")(toDevice(x)))
    np.testing.assert_allclose(y, [[0, np.exp(-80.0), 0.5, 1, 1]], rtol=1e-6, atol=0)


def test_relu_gradient_is_zero_at_and_below_zero():
    mod = Activation("relu")
    mod(toDevice(np.array([[-1.0, 0.0, 2.0]], np.float32)))
    np.testing.assert_array_equal(toHost(mod.backward(toDevice(np.full((1, 3), 5.0, np.float32)))), [[0, 0, 5]])


def test_gelu_keeps_float32_relative_precision_in_the_negative_tail():
    x32 = np.linspace(-9, -3, 61, dtype=np.float32)[None]
    x = x32.astype(np.float64)
    u = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
    p = 1 / (1 + np.exp(-2 * u))  # 0.5 (1 + tanh(u)) without the cancellation, in float64
    dp = p * (1 + 2 * x * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x ** 2) * (1 - p))
    mod = Activation("gelu")
    np.testing.assert_allclose(toHost(mod(toDevice(x32))), x * p, rtol=1e-5)
    np.testing.assert_allclose(toHost(mod.backward(toDevice(np.ones_like(x32)))), dp, rtol=1e-5)


def test_unknown_activation_is_a_value_error_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"'mish'.*'clip'.*'elu'.*'gelu'.*'leakyRelu'.*'relu'.*'selu'.*"
                                         r"'sigmoid'.*'silu'.*'softPlus'.*'swish'.*'tanh'"):
        Activation("mish")


@pytest.mark.parametrize("kwargs, message", [
    (dict(activation="softPlus", beta=0.0), r"Activation 'act': softPlus beta must be positive, got 0.0"),
    (dict(activation="softPlus", beta=-1.0), r"beta must be positive, got -1.0"),
    (dict(activation="clip", low=1.0, high=1.0), r"Activation 'act': clip needs low < high, got low=1.0, high=1.0"),
    (dict(activation="clip", low=2.0, high=-2.0), r"clip needs low < high, got low=2.0, high=-2.0"),
])
def test_activation_refuses_parameters_without_a_meaning(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Activation(name="act", **kwargs)


def test_activation_refuses_integer_input_naming_the_module():
    with pytest.raises(DtypeError, match=r"Activation 'act': expected a floating dtype .* got int64"):
        Activation("elu", name="act")(toDevice(np.zeros((2, 3), np.int64)))


def test_activation_rebuilds_from_blueprint_with_its_slope():
    mod = buildFromBlueprint(Activation("leakyRelu", slope=0.3).getBlueprint())
    assert (mod.activation, mod.slope) == ("leakyRelu", 0.3)


def test_a_blueprint_written_before_the_new_parameters_still_builds():
    old = {"class": "Activation", "args": {"activation": "leakyRelu", "slope": 0.3, "name": "a"}}
    mod = buildFromBlueprint(old)
    x = np.array([[-2.0, 1.0]], np.float32)
    np.testing.assert_allclose(toHost(mod(toDevice(x))), [[-0.6, 1.0]], rtol=1e-6)


@pytest.mark.parametrize("name, kwargs", [("softPlus", dict(beta=2.0, threshold=3.0)),
                                          ("clip", dict(low=-0.5, high=2.0)), ("elu", dict(alpha=0.5)),
                                          ("silu", {})])
def test_activation_survives_save_and_load_model_with_its_parameters(tmp_path, name, kwargs):
    mod = Activation(name, **kwargs)
    json.dumps(mod.getBlueprint())  # the blueprint is plain JSON
    mod.save(tmp_path / "act.h5")
    loaded = loadModel(tmp_path / "act.h5")
    assert loaded.activation == name and all(getattr(loaded, k) == v for k, v in kwargs.items())
    x = toDevice((3 * np.random.default_rng(0).standard_normal((4, 5))).astype(np.float32))
    np.testing.assert_array_equal(toHost(loaded(x)), toHost(mod(x)))
