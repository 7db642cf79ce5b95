import numpy as np
import pytest

from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import DtypeError
from macrobatch.engine.gradcheck import checkModuleGrads
from macrobatch.modules.identity import Identity
from macrobatch.modules.module import loadModel


def test_identity_returns_its_input_and_gradient_without_a_copy():
    x = toDevice(np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32))
    g = toDevice(np.random.default_rng(1).standard_normal((3, 4, 5)).astype(np.float32))
    mod = Identity()
    assert mod(x) is x and mod.backward(g) is g


def test_identity_gradients_match_finite_differences():
    checkModuleGrads(Identity(), np.random.default_rng(0).standard_normal((2, 3, 2)))


def test_identity_matches_torch():
    torch = pytest.importorskip("torch")
    x, g = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    torch.nn.Identity()(tx).backward(torch.from_numpy(g))
    mod = Identity()
    np.testing.assert_array_equal(toHost(mod(toDevice(x))), tx.detach().numpy())
    np.testing.assert_array_equal(toHost(mod.backward(toDevice(g))), tx.grad.numpy())


def test_identity_survives_save_and_load_model(tmp_path):
    Identity(name="skip").save(tmp_path / "id.h5")
    loaded = loadModel(tmp_path / "id.h5")
    assert type(loaded) is Identity and loaded.name == "skip"
    x = toDevice(np.ones((2, 2), np.float32))
    assert loaded(x) is x


def test_identity_rejects_integer_input():
    with pytest.raises(DtypeError, match=r"Identity: expected a floating dtype .* got int64"):
        Identity()(toDevice(np.zeros((2, 2), np.int64)))
