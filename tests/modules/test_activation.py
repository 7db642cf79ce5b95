import warnings

import numpy as np
import pytest

from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.activation import Activation, activations
from macrobatch.modules.module import buildFromBlueprint

names = ["relu", "leakyRelu", "sigmoid", "tanh", "gelu"]


def torchReference(torch, name, slope):
    F = torch.nn.functional
    return {"relu": F.relu, "leakyRelu": lambda x: F.leaky_relu(x, slope), "sigmoid": torch.sigmoid,
            "tanh": torch.tanh, "gelu": lambda x: F.gelu(x, approximate="tanh")}[name]


def test_the_table_holds_every_documented_activation():
    assert sorted(activations) == sorted(names)


@pytest.mark.parametrize("name", names)
def test_activation_gradients_match_finite_differences(name):
    # standard normal inputs: none within eps of relu's kink at 0
    x = np.random.default_rng(0).standard_normal((3, 4, 2))
    checkModuleGrads(Activation(name, slope=0.2), x)


@pytest.mark.parametrize("name", names)
@pytest.mark.parametrize("slope", [0.01, -0.5, 1.5])
def test_activation_matches_torch(name, slope):
    # torch runs in float64 on the same float32 inputs: float32 torch itself is off by up to 1e-6
    # in gelu's negative tail, where 1 + tanh cancels
    torch = pytest.importorskip("torch")
    x = (3 * np.random.default_rng(1).standard_normal((4, 3, 5))).astype(np.float32)
    g = np.random.default_rng(2).standard_normal((4, 3, 5)).astype(np.float32)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    ty = torchReference(torch, name, slope)(tx)
    ty.backward(torch.from_numpy(g.astype(np.float64)))
    mod = Activation(name, slope=slope)
    y = mod(x)
    gx = mod.backward(g)
    assert y.dtype == gx.dtype == np.float32
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("name", names)
def test_activation_leaves_its_input_and_output_unchanged(name):
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    keep = x.copy()
    mod = Activation(name)
    y = mod(x)
    out = y.copy()
    mod.backward(np.ones_like(x))
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(y, out)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("name", names)
def test_activation_keeps_the_input_dtype(name, dtype):
    mod = Activation(name)
    x = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    assert mod(x).dtype == dtype and mod.backward(np.ones_like(x)).dtype == dtype


def test_sigmoid_saturates_on_huge_inputs_without_overflow_warnings():
    x = np.array([[-1e4, -80.0, 0.0, 80.0, 1e4]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = Activation("sigmoid")(x)
    np.testing.assert_allclose(y, [[0, np.exp(-80.0), 0.5, 1, 1]], rtol=1e-6, atol=0)


def test_relu_gradient_is_zero_at_and_below_zero():
    mod = Activation("relu")
    mod(np.array([[-1.0, 0.0, 2.0]], np.float32))
    np.testing.assert_array_equal(mod.backward(np.full((1, 3), 5.0, np.float32)), [[0, 0, 5]])


def test_unknown_activation_is_a_value_error_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"'swish'.*'gelu'.*'leakyRelu'.*'relu'.*'sigmoid'.*'tanh'"):
        Activation("swish")


def test_activation_rebuilds_from_blueprint_with_its_slope():
    mod = buildFromBlueprint(Activation("leakyRelu", slope=0.3).getBlueprint())
    assert (mod.activation, mod.slope) == ("leakyRelu", 0.3)


def test_gelu_keeps_float32_relative_precision_in_the_negative_tail():
    x32 = np.linspace(-9, -3, 61, dtype=np.float32)[None]
    x = x32.astype(np.float64)
    u = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
    p = 1 / (1 + np.exp(-2 * u))  # 0.5 (1 + tanh(u)) without the cancellation, in float64
    dp = p * (1 + 2 * x * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x ** 2) * (1 - p))
    mod = Activation("gelu")
    np.testing.assert_allclose(mod(x32), x * p, rtol=1e-5)
    np.testing.assert_allclose(mod.backward(np.ones_like(x32)), dp, rtol=1e-5)
