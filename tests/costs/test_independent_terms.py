"""Cost.sampleGrad(independent=True): per-sample terms that depend on their own sample alone (DP-SGD's
sensitivity bound needs them), against the terms written out by hand and torch's summed cross-entropy."""
import numpy as np
import pytest

from macrobatch.costs import MSE, CrossEntropy, Multi
from macrobatch.engine.backend import toDevice, toHost

WEIGHTS = [1.0, 3.0, 0.5]


def sampleRows(cost, logits, labels, independent):
    """(error, per-sample gradient rows) of sampleGrad on host data."""
    error, rows = cost.sampleGrad(toDevice(logits), cost.prepareTarget(toDevice(labels)), independent=independent)
    return float(toHost(error)), toHost(rows)


def batchOf():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 2, 3)).astype(np.float32)
    labels = np.array([[0, 1], [-100, -100], [2, 1], [1, -100]], dtype=np.int32)
    return logits, labels


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_a_weighted_samples_independent_term_is_its_weighted_rows_over_its_row_count(smoothing):
    """Sample i's independent term is sum of its rows' weighted losses / rows per sample: torch's
    reduction='sum' cross-entropy of that sample alone, divided by 2 rows, gives the same gradient."""
    torch = pytest.importorskip("torch")
    logits, labels = batchOf()
    cost = CrossEntropy(weights=WEIGHTS, ignoreIndex=-100, labelSmoothing=smoothing)
    _, rows = sampleRows(cost, logits, labels, independent=True)
    for i in range(4):
        out = torch.tensor(logits[i], requires_grad=True)
        loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(labels[i]).long(),
                                                 weight=torch.tensor(WEIGHTS), ignore_index=-100,
                                                 reduction="sum", label_smoothing=smoothing) / 2
        loss.backward()
        np.testing.assert_allclose(rows[i], out.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_independent_terms_do_not_move_when_another_samples_labels_change():
    """Changing sample 3's labels changes the batch's row-weight sum: the default terms of sample 0 move with
    it, the independent ones do not; the error is the same with and without independent."""
    logits, labels = batchOf()
    other = labels.copy()
    other[3] = [2, 2]
    cost = CrossEntropy(weights=WEIGHTS, ignoreIndex=-100)
    errorA, independentA = sampleRows(cost, logits, labels, True)
    errorB, independentB = sampleRows(cost, logits, other, True)
    _, defaultA = sampleRows(cost, logits, labels, False)
    _, defaultB = sampleRows(cost, logits, other, False)
    np.testing.assert_allclose(independentA[:3], independentB[:3], rtol=1e-6, atol=1e-7)
    assert np.abs(defaultA[0] - defaultB[0]).max() > 1e-3
    errorDefault, _ = sampleRows(cost, logits, labels, False)
    assert errorA == pytest.approx(errorDefault, rel=1e-6) and errorA != pytest.approx(errorB)


def test_unweighted_terms_are_already_independent():
    """Without weights or ignoreIndex (and for MSE, inside Multi too) independent changes nothing."""
    logits, labels = batchOf()
    labels = np.abs(labels) % 3
    target = np.random.default_rng(1).standard_normal((4, 2, 3)).astype(np.float32)
    for cost, pred, tgt in ((CrossEntropy(), logits, labels), (MSE(), logits, target)):
        np.testing.assert_array_equal(sampleRows(cost, pred, tgt, True)[1], sampleRows(cost, pred, tgt, False)[1])


def test_multi_rescales_each_weighted_cost_alone():
    """Multi's independent terms: the weighted CrossEntropy's rows rescaled, the MSE's untouched."""
    logits, labels = batchOf()
    target = np.random.default_rng(1).standard_normal((4, 2, 3)).astype(np.float32)
    cost = Multi(CrossEntropy(weights=WEIGHTS, ignoreIndex=-100), MSE(), weights=[1.0, 0.5])
    pair = [toDevice(logits), toDevice(logits)]
    _, default = cost.sampleGrad(pair, cost.prepareTarget([toDevice(labels), toDevice(target)]))
    default = [toHost(g).copy() for g in default]
    _, independent = cost.sampleGrad(pair, cost.prepareTarget([toDevice(labels), toDevice(target)]), independent=True)
    _, alone = sampleRows(CrossEntropy(weights=WEIGHTS, ignoreIndex=-100), logits, labels, True)
    np.testing.assert_allclose(toHost(independent[0]), alone, rtol=1e-6)
    np.testing.assert_array_equal(toHost(independent[1]), default[1])


def test_dp_clips_independent_terms():
    """DifferentialPrivacy's clipped output gradient of sample 0 stays put when sample 3's labels change (a
    weighted CrossEntropy: its batch terms would move)."""
    from macrobatch.modules import Linear
    from macrobatch.optimizers import SGD
    from macrobatch.privacy.differentialprivacy import DifferentialPrivacy
    logits, labels = batchOf()
    other = labels.copy()
    other[3] = [2, 2]
    net = Linear(3, 3)
    private = DifferentialPrivacy(SGD(0.1), 1e3, 0.0).setupOn(net)
    clipped = []
    for target in (labels, other):
        cost = CrossEntropy(weights=WEIGHTS, ignoreIndex=-100)
        pred = net(toDevice(logits.reshape(8, 3)))
        _, grad = private.clippedOutputGrad(net, cost, pred, cost.prepareTarget(toDevice(target.reshape(8))))
        clipped.append(toHost(grad).copy())
    np.testing.assert_allclose(clipped[0][:6], clipped[1][:6], rtol=1e-6, atol=1e-7)
