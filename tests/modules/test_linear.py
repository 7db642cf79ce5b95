import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import DtypeError, ShapeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules import Linear, Sequential


def test_linear_gradients_match_finite_differences():
    checkModuleGrads(Linear(5, 4).cast(np.float64), np.random.default_rng(0).standard_normal((3, 5)))


def test_linear_without_bias_gradients_match_finite_differences():
    mod = Linear(5, 4, useBias=False).cast(np.float64)
    assert list(mod.vars) == ["W"]
    checkModuleGrads(mod, np.random.default_rng(0).standard_normal((3, 5)))


def test_linear_matches_torch():
    torch = pytest.importorskip("torch")
    mod = Linear(7, 3)
    ref = torch.nn.Linear(7, 3)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(toHost(mod.vars["W"].data).T.copy()))
        ref.bias.copy_(torch.from_numpy(toHost(mod.vars["b"].data)))
    x = np.random.default_rng(1).standard_normal((4, 7)).astype(np.float32)
    g = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    ty = ref(tx)
    ty.backward(torch.from_numpy(g))
    y = mod(toDevice(x))
    gx = mod.backward(toDevice(g))
    np.testing.assert_allclose(toHost(y), ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(toHost(gx), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), ref.weight.grad.numpy().T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(toHost(mod.vars["b"].grad), ref.bias.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_linear_rejects_wrong_feature_count_naming_expected_and_got():
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 784\), got \(2, 64\)"):
        Linear(784, 10)(toDevice(np.zeros((2, 64), np.float32)))


def test_linear_rejects_input_of_another_dtype():
    with pytest.raises(DtypeError, match="float64"):
        Linear(3, 2)(toDevice(np.zeros((2, 3), np.float64)))


def test_parameter_gradients_accumulate_until_zeroed():
    mod = Linear(3, 2)
    x, g = toDevice(np.ones((2, 3), np.float32)), toDevice(np.ones((2, 2), np.float32))
    mod(x)
    mod.backward(g)
    once = toHost(mod.vars["W"].grad).copy()
    mod(x)
    mod.backward(g)
    np.testing.assert_allclose(toHost(mod.vars["W"].grad), 2 * once)
    mod.zeroGradParams()
    assert not toHost(mod.vars["W"].grad).any()


def test_sequential_gradients_match_finite_differences():
    seq = Sequential(Linear(4, 6), Linear(6, 2)).cast(np.float64)
    checkModuleGrads(seq, np.random.default_rng(0).standard_normal((3, 4)))


def test_sequential_skips_first_layer_input_gradient_when_not_needed():
    seq = Sequential(Linear(4, 6), Linear(6, 2))
    seq(toDevice(np.ones((3, 4), np.float32)))
    assert seq.backward(toDevice(np.ones((3, 2), np.float32)), updGrad=False) is None
    assert toHost(seq[0].vars["W"].grad).any()
