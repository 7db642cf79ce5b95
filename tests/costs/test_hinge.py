import numpy as np
import pytest

from macrobatch.costs.hinge import Hinge
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import LabelError, ShapeError
from macrobatch.engine.gradcheck import checkCostGrad


def scoresAndLabels(shape=(6, 5), dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)


@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 4)], ids=["matrix", "sequence"])
def test_hinge_gradient_matches_finite_differences(shape):
    scores, labels = scoresAndLabels(shape, np.float64)
    checkCostGrad(Hinge(), scores, toDevice(labels))


@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_hinge_matches_torch_multi_margin_loss(margin):
    torch = pytest.importorskip("torch")
    scores, labels = scoresAndLabels((16, 5), seed=1)
    cost = Hinge(margin)
    error, grad = cost(toDevice(scores), cost.prepareTarget(toDevice(labels)))
    tx = torch.from_numpy(scores).requires_grad_()
    loss = torch.nn.functional.multi_margin_loss(tx, torch.from_numpy(labels).long(), p=1, margin=margin)
    loss.backward()
    assert error.shape == () and error.dtype == np.float32 and grad.dtype == np.float32
    assert 0 < (toHost(grad) != 0).mean() < 1
    np.testing.assert_allclose(float(error), loss.item(), rtol=1e-6)
    np.testing.assert_allclose(toHost(grad), tx.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_hinge_is_zero_once_the_label_wins_by_the_margin_and_counts_accuracy():
    scores = np.array([[3.0, 1.0, 1.9], [0.0, 2.0, 1.5]], np.float32)
    cost = Hinge()
    error, grad = cost(toDevice(scores), toDevice(np.array([0, 1], np.int32)))
    assert float(error) == pytest.approx((0 + 0.5 / 3) / 2)
    np.testing.assert_allclose(toHost(grad), [[0, 0, 0], [0, -1 / 6, 1 / 6]], atol=1e-7)
    assert cost.getMetrics()["accuracy"] == 1.0


def test_hinge_rejects_labels_out_of_range_and_bad_shapes():
    cost = Hinge()
    # at the call on the CPU; on the GPU, checked on the device, at the next read of the results
    with pytest.raises(LabelError, match=r"Hinge: label 5 is out of range for 5 classes"):
        cost(toDevice(np.zeros((2, 5), np.float32)), toDevice(np.array([0, 5], np.int32)))
        cost.getError()
    with pytest.raises(LabelError, match=r"Hinge: label -1 at index 1 is negative"):
        Hinge().prepareTarget(np.array([0, -1]))
    with pytest.raises(ShapeError, match=r"Hinge: expected labels of shape \(2,\), got \(3,\)"):
        Hinge()(toDevice(np.zeros((2, 5), np.float32)), toDevice(np.zeros(3, np.int32)))


@pytest.mark.parametrize("margin", [-1.0, float("nan")])
def test_hinge_rejects_a_bad_margin(margin):
    with pytest.raises(ValueError, match="Hinge: margin must be finite and >= 0"):
        Hinge(margin)
