"""Metrics: hand-computed values on a tiny case, and a direct NumPy computation over the whole set
equals the Validator's accumulation over any batch and macrobatch split."""
import math

import numpy as np
import pytest

from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.costs.metrics.accuracy import Accuracy
from macrobatch.costs.metrics.confusionmatrix import ConfusionMatrix
from macrobatch.costs.metrics.meanabsoluteerror import MeanAbsoluteError
from macrobatch.costs.metrics.meansquarederror import MeanSquaredError
from macrobatch.costs.metrics.topkaccuracy import TopKAccuracy
from macrobatch.costs.mse import MSE
from macrobatch.engine import backend, setSeed
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import DtypeError, LabelError, ModelFileError, ShapeError
from macrobatch.handlers.validator import Validator
from macrobatch.modules.activation import Activation
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential

# four samples, four classes: predictions (argmax) 0, 1, 1, 1 for labels 0, 0, 1, 2; class 3 never occurs
LOGITS = np.array([[3, 1, 0, 0], [2, 5, 0, 0], [0, 4, 1, 0], [1, 2, 0, 1]], np.float32)
LABELS = np.array([0, 0, 1, 2], np.int32)


def updated(metric, pred=LOGITS, target=LABELS):
    metric.update(toDevice(pred), toDevice(target))
    return metric.compute()


def test_accuracy_and_top_k_accuracy_of_a_hand_worked_case():
    assert updated(Accuracy()) == {"accuracy": 0.5}
    assert updated(TopKAccuracy(1)) == {"top1Accuracy": 0.5}
    assert updated(TopKAccuracy(2)) == {"top2Accuracy": 0.75}  # sample 3's label has 3 larger logits
    assert updated(TopKAccuracy(4)) == {"top4Accuracy": 1.0}


def test_confusion_matrix_precision_recall_and_f1_of_a_hand_worked_case():
    result = updated(ConfusionMatrix(4))
    np.testing.assert_array_equal(result["confusion"], [[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    assert result["confusion"].dtype == np.int64
    # tp (1, 1, 0, 0), predicted (1, 3, 0, 0), actual (2, 1, 1, 0)
    np.testing.assert_allclose(result["precision"], [1, 1 / 3, np.nan, np.nan])
    np.testing.assert_allclose(result["recall"], [0.5, 1, 0, np.nan])
    np.testing.assert_allclose(result["f1"], [2 / 3, 0.5, 0, np.nan])
    # macro averages over the classes that occur (0, 1, 2), class 2's undefined precision counting 0
    assert result["macroPrecision"] == pytest.approx(4 / 9)
    assert result["macroRecall"] == pytest.approx(0.5)
    assert result["macroF1"] == pytest.approx(7 / 18)


def test_a_tie_counts_for_the_label_in_top_k_but_argmax_takes_the_first_class():
    logits, labels = np.array([[1, 1, 0]], np.float32), np.array([1], np.int32)
    assert updated(Accuracy(), logits, labels)["accuracy"] == 0.0
    assert updated(TopKAccuracy(1), logits, labels)["top1Accuracy"] == 1.0


def test_regression_metrics_of_a_hand_worked_case():
    pred, target = np.array([[1, 2], [3, 4]], np.float32), np.array([[0, 2], [5, 4]], np.float32)
    assert updated(MeanSquaredError(), pred, target) == {"mse": pytest.approx(5 / 4)}
    assert updated(MeanAbsoluteError(), pred, target) == {"mae": pytest.approx(3 / 4)}


def test_a_metric_that_saw_nothing_reports_nan():
    assert all(math.isnan(v) for v in (Accuracy().compute()["accuracy"], MeanSquaredError().compute()["mse"],
                                       ConfusionMatrix(3).compute()["macroF1"]))
    assert not ConfusionMatrix(3).compute()["confusion"].any()


def model():
    setSeed(0)
    return Sequential(Linear(6, 12), Activation("tanh"), Linear(12, 4))


def classification(n=257):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    return x, rng.integers(0, 4, n)


def directClassification(logits, labels, classes=4):
    """Every score by the definitions, one sample or one class at a time."""
    predicted = logits.argmax(axis=1)
    ranking = np.argsort(-logits, axis=1)
    confusion = np.zeros((classes, classes), np.int64)
    for label, guess in zip(labels, predicted):
        confusion[label, guess] += 1
    precision, recall, f1 = [], [], []
    for c in range(classes):
        tp = np.sum((predicted == c) & (labels == c))
        fp = np.sum((predicted == c) & (labels != c))
        fn = np.sum((predicted != c) & (labels == c))
        precision.append(tp / (tp + fp) if tp + fp else np.nan)
        recall.append(tp / (tp + fn) if tp + fn else np.nan)
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else np.nan)
    occurring = [c for c in range(classes) if np.any(labels == c) or np.any(predicted == c)]
    return {"accuracy": np.mean(predicted == labels),
            "top2Accuracy": np.mean([label in row[:2] for label, row in zip(labels, ranking)]),
            "confusion": confusion, "precision": precision, "recall": recall, "f1": f1,
            "macroPrecision": np.mean([np.nan_to_num(precision[c]) for c in occurring]),
            "macroRecall": np.mean([np.nan_to_num(recall[c]) for c in occurring]),
            "macroF1": np.mean([np.nan_to_num(f1[c]) for c in occurring])}


@pytest.mark.parametrize("batchsize,macro", [(1, 1), (16, 50), (64, 10000), (300, 300)])
def test_classification_metrics_through_the_validator_equal_a_direct_computation(batchsize, macro):
    x, y = classification()
    net = model()
    logits = toHost(net.evalMode()(toDevice(x))).copy()
    want = directClassification(logits, y)
    assert 0 < want["accuracy"] < want["top2Accuracy"] < 1 and (want["confusion"].sum(axis=0) > 0).sum() >= 2
    validator = Validator(net, CrossEntropy(), batchsize=batchsize,
                          metrics=[Accuracy(), TopKAccuracy(2), ConfusionMatrix(4)])
    validator.validateFromHost(x, y, macroBatchSize=macro)
    got = validator.metrics
    assert got["accuracy"] == pytest.approx(want["accuracy"])
    assert got["top2Accuracy"] == pytest.approx(want["top2Accuracy"])
    np.testing.assert_array_equal(got["confusion"], want["confusion"])
    for key in ("precision", "recall", "f1"):
        np.testing.assert_allclose(got[key], want[key], err_msg=key)
    for key in ("macroPrecision", "macroRecall", "macroF1"):
        assert got[key] == pytest.approx(want[key]), key
    assert "error" in got


def test_validating_twice_resets_the_metrics_first():
    x, y = classification()
    validator = Validator(model(), CrossEntropy(), batchsize=32, metrics=[Accuracy(), ConfusionMatrix(4)])
    validator.validateFromHost(x, y, macroBatchSize=100)
    first = validator.metrics
    validator.validate(toDevice(x), toDevice(y.astype(np.int32)))
    assert validator.metrics["accuracy"] == first["accuracy"]
    np.testing.assert_array_equal(validator.metrics["confusion"], first["confusion"])
    assert validator.metrics["confusion"].sum() == len(y)


@pytest.mark.parametrize("batchsize,macro", [(1, 1), (16, 50), (300, 300)])
def test_regression_metrics_through_the_validator_equal_a_direct_computation(batchsize, macro):
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((257, 6)).astype(np.float32), rng.standard_normal((257, 4)).astype(np.float32)
    net = model()
    pred = toHost(net.evalMode()(toDevice(x))).astype(np.float64)
    validator = Validator(net, MSE(), batchsize=batchsize, metrics=[MeanSquaredError(), MeanAbsoluteError()])
    error = validator.validateFromHost(x, t, macroBatchSize=macro)
    assert validator.metrics["mse"] == pytest.approx(np.mean((pred - t) ** 2), rel=1e-5)
    assert validator.metrics["mse"] == pytest.approx(error, rel=1e-5)
    assert validator.metrics["mae"] == pytest.approx(np.mean(np.abs(pred - t)), rel=1e-5)


def test_state_round_trip_continues_the_accumulation():
    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 4, 40).astype(np.int32)
    whole, first, second = ConfusionMatrix(4), ConfusionMatrix(4), ConfusionMatrix(4)
    whole.update(toDevice(logits), toDevice(labels))
    first.update(toDevice(logits[:25]), toDevice(labels[:25]))
    second.setState(first.getState())
    second.update(toDevice(logits[25:]), toDevice(labels[25:]))
    np.testing.assert_array_equal(second.compute()["confusion"], whole.compute()["confusion"])
    assert second.getState()["count"] == 40
    with pytest.raises(ModelFileError, match="ConfusionMatrix.setState: the saved accumulators do not fit"):
        ConfusionMatrix(3).setState(first.getState())


@pytest.mark.parametrize("metric", [Accuracy(), TopKAccuracy(2), ConfusionMatrix(4)], ids=lambda m: type(m).__name__)
def test_classification_input_is_checked(metric):
    name = type(metric).__name__
    with pytest.raises(ShapeError, match=rf"{name}: expected predictions of shape \(batch, classes\), got \(4,\)"):
        metric.update(toDevice(LOGITS[:, 0]), toDevice(LABELS))
    with pytest.raises(ShapeError, match=rf"{name}: expected labels of shape \(4,\), got \(4, 1\)"):
        metric.update(toDevice(LOGITS), toDevice(LABELS[:, None]))
    with pytest.raises(DtypeError, match=f"{name}: labels must be integers, got float32"):
        metric.update(toDevice(LOGITS), toDevice(LABELS.astype(np.float32)))
    assert metric.count == 0
    # a label out of range: at update on the CPU; on the GPU, checked on the device, at the next compute
    for labels, message in (([0, 1, 4, 2], "label 4 (at index 2 )?is out of range for 4 classes"),
                            ([-1, 1, 0, 2], "label -1 (at index 0 )?is out of range for 4 classes")):
        with pytest.raises(LabelError, match=f"{name}: {message}"):
            metric.update(toDevice(LOGITS), toDevice(np.array(labels, np.int32)))
            metric.compute()
        metric.reset()


classifiers = {"Accuracy": Accuracy, "TopKAccuracy": lambda: TopKAccuracy(2),
               "ConfusionMatrix": lambda: ConfusionMatrix(4)}
BAD_LABELS = np.array([0, 1, 9, 2], np.int32)


@pytest.mark.skipif(backend.isCuda, reason="the CPU checks labels at update; the GPU checks them on the device and "
                                           "refuses them at compute (the next test)")
@pytest.mark.parametrize("name", classifiers)
def test_on_the_cpu_a_bad_label_is_refused_before_the_batch_counts(name):
    metric = classifiers[name]()
    with pytest.raises(LabelError, match=f"{name}: label 9 at index 2 is out of range for 4 classes"):
        metric.update(toDevice(LOGITS), toDevice(BAD_LABELS))
    assert metric.count == 0
    np.testing.assert_equal(updated(metric), updated(classifiers[name]()))


@pytest.mark.cuda
@pytest.mark.parametrize("name", classifiers)
def test_on_the_gpu_a_bad_label_is_clipped_and_compute_refuses_until_reset(name, hostWaits):
    metric = classifiers[name]()
    before = hostWaits()
    metric.update(toDevice(LOGITS), toDevice(BAD_LABELS))  # nothing read out of bounds, no wait
    assert hostWaits() == before
    for _ in range(2):
        with pytest.raises(LabelError, match=f"{name}: label 9 is out of range for 4 classes"):
            metric.compute()
    metric.reset()
    np.testing.assert_equal(updated(metric), updated(classifiers[name]()))


def test_class_counts_and_k_are_checked():
    with pytest.raises(ShapeError, match="ConfusionMatrix: predictions have 4 classes, expected 3"):
        ConfusionMatrix(3).update(toDevice(LOGITS), toDevice(LABELS))
    with pytest.raises(ShapeError, match="TopKAccuracy: k=5 is more than the 4 classes"):
        TopKAccuracy(5).update(toDevice(LOGITS), toDevice(LABELS))
    with pytest.raises(ValueError, match="TopKAccuracy: k must be a positive integer"):
        TopKAccuracy(0)
    with pytest.raises(ValueError, match="ConfusionMatrix: classes must be a positive integer"):
        ConfusionMatrix(2.5)


@pytest.mark.parametrize("cls", [MeanSquaredError, MeanAbsoluteError])
def test_regression_target_must_match_the_prediction_shape(cls):
    with pytest.raises(ShapeError, match=rf"{cls.__name__}: target of shape \(4, 3\) does not match prediction "
                                         r"of shape \(4, 4\)"):
        cls().update(toDevice(LOGITS), toDevice(LOGITS[:, :3]))
