import numpy as np
import pytest

from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.engine.backend import isDeviceArray, toDevice, toHost
from macrobatch.engine.errors import DtypeError, LabelError, ShapeError
from macrobatch.engine.gradcheck import checkCostGrad


def logitsAndLabels(batch=6, classes=5, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, classes)).astype(dtype), rng.integers(0, classes, batch).astype(np.int32)


def torchReference(logits, labels):
    torch = pytest.importorskip("torch")
    tx = torch.from_numpy(logits).requires_grad_()
    loss = torch.nn.functional.cross_entropy(tx, torch.from_numpy(labels).long())
    loss.backward()
    return loss.item(), tx.grad.numpy()


def test_crossentropy_gradient_matches_finite_differences():
    logits, labels = logitsAndLabels(dtype=np.float64)
    checkCostGrad(CrossEntropy(), logits, toDevice(labels))


def test_crossentropy_matches_torch_value_and_gradient():
    logits, labels = logitsAndLabels(batch=8, classes=7)
    cost = CrossEntropy()
    error, grad = cost(toDevice(logits), cost.prepareTarget(toDevice(labels)))
    refError, refGrad = torchReference(logits, labels)
    assert error.shape == () and error.dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(float(error), refError, rtol=1e-6)
    np.testing.assert_allclose(toHost(grad), refGrad, rtol=1e-5, atol=1e-7)


def test_crossentropy_stays_finite_and_matches_torch_on_huge_logits():
    logits = np.array([[1e4, 0, -1e4], [-1e4, 1e4, 1e4], [1e4, -1e4, 0]], np.float32)
    labels = np.array([0, 2, 1], np.int32)
    error, grad = CrossEntropy()(toDevice(logits), toDevice(labels))
    refError, refGrad = torchReference(logits, labels)
    assert np.isfinite(float(error)) and np.isfinite(toHost(grad)).all()
    np.testing.assert_allclose(float(error), refError, rtol=1e-6)
    np.testing.assert_allclose(toHost(grad), refGrad, atol=1e-7)


def test_crossentropy_validate_returns_the_same_error_without_a_gradient():
    logits, labels = logitsAndLabels()
    error, _ = CrossEntropy()(toDevice(logits), toDevice(labels))
    assert float(CrossEntropy().validate(toDevice(logits), toDevice(labels))) == float(error)


def test_crossentropy_counts_samples_whose_argmax_is_the_label():
    logits = np.array([[3, 1, 0], [0, 2, 1], [0, 1, 5], [4, 0, 0]], np.float32)
    cost = CrossEntropy()
    cost(toDevice(logits), toDevice(np.array([0, 1, 0, 2], np.int32)))
    cost(toDevice(logits[:1]), toDevice(np.array([0], np.int32)))
    assert cost.getMetrics()["accuracy"] == pytest.approx(3 / 5)


def test_prepare_target_turns_integer_valued_floats_into_int32():
    labels = CrossEntropy().prepareTarget(np.array([0.0, 3.0, 1.0], np.float64))
    assert labels.dtype == np.int32 and isinstance(labels, np.ndarray)
    np.testing.assert_array_equal(labels, [0, 3, 1])


def test_prepare_target_keeps_device_labels_on_the_device():
    labels = toDevice(np.array([2, 0, 1], np.int64))
    prepared = CrossEntropy().prepareTarget(labels)
    assert type(prepared) is type(labels) and prepared.dtype == np.int32


def test_prepare_target_rejects_a_fractional_label_naming_value_and_index():
    with pytest.raises(LabelError, match=r"label 2\.5 at index 2 is not an integer"):
        CrossEntropy().prepareTarget(np.array([0, 1, 2.5, 3.5]))


def test_prepare_target_rejects_nan_and_infinite_labels():
    with pytest.raises(LabelError, match=r"label nan at index 1 is not an integer"):
        CrossEntropy().prepareTarget(np.array([0, np.nan]))
    with pytest.raises(LabelError, match=r"label inf at index 0 is not an integer"):
        CrossEntropy().prepareTarget(np.array([np.inf, 1]))


def test_prepare_target_rejects_a_negative_label_naming_value_and_index():
    with pytest.raises(LabelError, match=r"label -1 at index 1 is negative"):
        CrossEntropy().prepareTarget(np.array([0, -1, 2, -4]))


def test_prepare_target_rejects_labels_that_are_not_numbers():
    with pytest.raises(DtypeError, match=r"labels must be integers or integer-valued floats, got <U3"):
        CrossEntropy().prepareTarget(np.array(["cat", "dog"]))


def test_prepare_target_rejects_labels_that_are_not_a_vector_or_a_matrix():
    with pytest.raises(ShapeError, match=r"expected labels of shape \(samples,\) or \(samples, time\), got \(4, 1, 1\)"):
        CrossEntropy().prepareTarget(np.zeros((4, 1, 1), np.int32))


def test_label_beyond_the_classes_is_rejected_after_prepare_target():
    cost = CrossEntropy()
    labels = cost.prepareTarget(np.array([0, 12, 3]))
    with pytest.raises(LabelError, match=r"label 12 is out of range for 10 classes"):
        cost(toDevice(np.zeros((3, 10), np.float32)), toDevice(labels))


def test_prepare_target_remembers_the_largest_label_of_every_block():
    cost = CrossEntropy()
    cost.prepareTarget(np.array([0, 12]))
    cost.prepareTarget(np.array([1, 2]))
    assert cost.maxLabel == 12


def test_reset_accumulator_forgets_the_labels_prepared_before():
    cost = CrossEntropy()
    cost.prepareTarget(np.array([0, 12]))
    cost.resetAccumulator()
    error, _ = cost(toDevice(np.zeros((2, 10), np.float32)), toDevice(cost.prepareTarget(np.array([1, 2]))))
    assert float(error) == pytest.approx(np.log(10))


def test_label_beyond_the_classes_is_rejected_without_prepare_target():
    """At the call on the CPU; on the GPU, checked on the device, at the next read of the results."""
    cost = CrossEntropy()
    with pytest.raises(LabelError, match=r"label 10 is out of range for 10 classes"):
        cost(toDevice(np.zeros((2, 10), np.float32)), toDevice(np.array([10, 3], np.int32)))
        cost.getError()


def test_negative_label_is_rejected_without_prepare_target():
    cost = CrossEntropy()
    with pytest.raises(LabelError, match=r"label -2 (at index 0 is negative|is out of range for 4 classes)"):
        cost(toDevice(np.zeros((2, 4), np.float32)), toDevice(np.array([-2, 3], np.int32)))
        cost.getError()


def test_float_labels_without_prepare_target_are_rejected():
    with pytest.raises(DtypeError, match=r"labels must be integers, got float32; convert them with prepareTarget"):
        CrossEntropy()(toDevice(np.zeros((2, 4), np.float32)), toDevice(np.array([1, 3], np.float32)))


def test_predictions_must_be_a_matrix_or_a_sequence():
    with pytest.raises(ShapeError, match=r"expected predictions of shape \(batch, classes\) or "
                                         r"\(batch, time, classes\), got \(2, 3, 4, 5\)"):
        CrossEntropy()(toDevice(np.zeros((2, 3, 4, 5), np.float32)), toDevice(np.zeros((2, 3, 4), np.int32)))


def test_labels_must_have_one_entry_per_sample():
    cost = CrossEntropy()
    with pytest.raises(ShapeError, match=r"expected labels of shape \(2,\), got \(3,\)"):
        cost(toDevice(np.zeros((2, 4), np.float32)), toDevice(np.zeros(3, np.int32)))
    with pytest.raises(ShapeError, match=r"expected labels of shape \(2,\), got \(2, 1\)"):
        cost(toDevice(np.zeros((2, 4), np.float32)), toDevice(np.zeros((2, 1), np.int32)))


def test_sequence_labels_must_match_the_predictions_batch_and_time():
    with pytest.raises(ShapeError, match=r"expected labels of shape \(2, 3\), got \(2,\)"):
        CrossEntropy()(toDevice(np.zeros((2, 3, 4), np.float32)), toDevice(np.zeros(2, np.int32)))


def weightedTorchReference(logits, labels, weights=None, ignoreIndex=-100, labelSmoothing=0.0, classAxis=-1):
    """torch's cross_entropy, on the (batch, classes, time) permutation of a sequence (classAxis=-1)."""
    torch = pytest.importorskip("torch")
    tx = torch.from_numpy(logits).requires_grad_()
    x = tx.permute(0, 2, 1) if logits.ndim == 3 and classAxis == -1 else tx
    loss = torch.nn.functional.cross_entropy(x, torch.from_numpy(labels).long(), ignore_index=ignoreIndex,
                                             weight=None if weights is None else torch.from_numpy(weights),
                                             label_smoothing=labelSmoothing)
    loss.backward()
    return loss.item(), tx.grad.numpy()


def sequenceAndLabels(shape=(3, 4, 5), dtype=np.float32, ignoreIndex=None, seed=1):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)
    if ignoreIndex is not None:
        labels.reshape(-1)[::3] = ignoreIndex
    return rng.standard_normal(shape).astype(dtype), labels


weights5 = np.array([0.5, 2.0, 1.0, 0.0, 3.0])
variants = {"plain": {}, "weights": {"weights": weights5}, "ignore": {"ignoreIndex": -100},
            "ignore255": {"ignoreIndex": 255}, "both": {"weights": weights5, "ignoreIndex": -100}}


@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5)], ids=["matrix", "sequence"])
@pytest.mark.parametrize("variant", variants)
def test_weighted_ignoring_and_sequence_gradients_match_finite_differences(variant, shape):
    kwargs = variants[variant]
    logits, labels = sequenceAndLabels(shape, np.float64, kwargs.get("ignoreIndex"))
    checkCostGrad(CrossEntropy(**kwargs), logits, toDevice(labels))


@pytest.mark.parametrize("shape", [(8, 5), (3, 4, 5)], ids=["matrix", "sequence"])
@pytest.mark.parametrize("variant", variants)
def test_weighted_ignoring_and_sequence_match_torch_value_and_gradient(variant, shape):
    kwargs = variants[variant]
    logits, labels = sequenceAndLabels(shape, ignoreIndex=kwargs.get("ignoreIndex"))
    cost = CrossEntropy(**{k: v.astype(np.float32) if k == "weights" else v for k, v in kwargs.items()})
    error, grad = cost(toDevice(logits), cost.prepareTarget(toDevice(labels)))
    weights = kwargs.get("weights")
    refError, refGrad = weightedTorchReference(logits, labels, None if weights is None else weights.astype(np.float32),
                                               kwargs.get("ignoreIndex", -100))
    assert error.shape == () and grad.dtype == np.float32 and grad.shape == logits.shape
    np.testing.assert_allclose(float(error), refError, rtol=1e-5)
    np.testing.assert_allclose(toHost(grad), refGrad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kwargs", [{"ignoreIndex": -100}, {"ignoreIndex": -100, "labelSmoothing": 0.2},
                                    {"weights": [0.0, 0.0, 1.0]}, {"weights": [0.0, 0.0, 1.0], "labelSmoothing": 0.2}],
                         ids=["ignored", "ignoredSmoothed", "zeroWeights", "zeroWeightsSmoothed"])
def test_a_batch_that_weighs_nothing_has_error_and_gradient_zero(kwargs):
    """torch's loss is NaN there (0 / 0), its gradient 0 for all-ignored rows (NaN with zero weights or
    smoothing); ours are both 0, so training goes on past a NaN check."""
    logits = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    labels = np.array([-100, -100, -100] if "ignoreIndex" in kwargs else [0, 1, 0], np.int32)
    error, grad = CrossEntropy(**kwargs)(toDevice(logits), toDevice(labels))
    weights = kwargs.get("weights")
    refError, refGrad = weightedTorchReference(logits, labels, None if weights is None else np.float32(weights),
                                               labelSmoothing=kwargs.get("labelSmoothing", 0.0))
    assert np.isnan(refError) and float(error) == 0.0
    np.testing.assert_array_equal(toHost(grad), np.zeros_like(logits))
    if kwargs == {"ignoreIndex": -100}:
        np.testing.assert_array_equal(refGrad, np.zeros_like(logits))


def test_accumulated_error_weighs_batches_by_judged_rows_and_skips_an_all_ignored_one():
    """The epoch's error is torch's loss over all its batches at once; an all-ignored batch leaves it alone."""
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((10, 4)).astype(np.float32)
    labels = np.array([0, -100, 2, 3, -100, -100, -100, 1, -100, 2], np.int32)
    cost = CrossEntropy(ignoreIndex=-100)
    for start, stop in ((0, 4), (4, 7), (7, 10)):  # 3, 0 and 2 judged rows
        cost(toDevice(logits[start:stop]), toDevice(labels[start:stop]))
    assert cost.getError() == pytest.approx(weightedTorchReference(logits, labels)[0], rel=1e-6)
    assert cost.getMetrics()["accuracy"] == pytest.approx(float(np.mean(
        (logits.argmax(1) == labels)[labels != -100])))


def test_the_default_trainer_trains_on_through_a_batch_of_ignored_labels():
    from macrobatch.handlers.trainer import Trainer
    from macrobatch.modules.linear import Linear
    from macrobatch.optimizers.sgd import SGD
    rng = np.random.default_rng(4)
    data = rng.standard_normal((12, 5)).astype(np.float32)
    labels = rng.integers(0, 3, 12).astype(np.int32)
    labels[4:8] = -100  # the second batch of four is all ignored
    net = Linear(5, 3)
    optimizer = SGD(0.1)
    optimizer.setupOn(net)
    cost = CrossEntropy(ignoreIndex=-100)
    trainer = Trainer(net, cost, optimizer, batchsize=4)
    trainer.trainFromHost(data, labels, macroBatchSize=12, random=False)
    judged = labels != -100
    assert np.isfinite(toHost(net.vars["W"].data)).all() and np.isfinite(cost.getError())
    assert int(toHost(cost.accumJudged)) == judged.sum() and cost.accumCount == 12


def mapsAndLabels(shape, dtype=np.float32, ignoreIndex=None, seed=2):
    """Scores in torch's (batch, classes, d1, ...) layout and labels (batch, d1, ...), every third ignored."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, shape[1], shape[:1] + shape[2:]).astype(np.int32)
    if ignoreIndex is not None:
        labels.reshape(-1)[::3] = ignoreIndex
    return rng.standard_normal(shape).astype(dtype), labels


# layout -> (classAxis, pred shape): classes last (matrix, sequence) or second (torch's, segmentation)
layouts = {"matrix": (-1, (8, 5)), "sequence": (-1, (3, 4, 5)), "classes1-matrix": (1, (8, 5)),
           "classes1-length": (1, (3, 5, 4)), "classes1-map": (1, (2, 5, 3, 4)), "classes1-volume": (1, (2, 5, 2, 3, 2))}


def layoutData(layout, kwargs, dtype=np.float32):
    classAxis, shape = layouts[layout]
    make = sequenceAndLabels if classAxis == -1 else mapsAndLabels
    return (*make(shape, dtype, kwargs.get("ignoreIndex")), classAxis)


@pytest.mark.parametrize("smoothing", [0.0, 0.3], ids=["exact", "smoothed"])
@pytest.mark.parametrize("layout", layouts)
@pytest.mark.parametrize("variant", variants)
def test_every_layout_with_weights_ignoring_and_smoothing_matches_torch(variant, layout, smoothing):
    kwargs = variants[variant]
    logits, labels, classAxis = layoutData(layout, kwargs)
    weights = kwargs.get("weights")
    weights = None if weights is None else weights.astype(np.float32)
    cost = CrossEntropy(**{**kwargs, "weights": weights}, labelSmoothing=smoothing, classAxis=classAxis)
    error, grad = cost(toDevice(logits), cost.prepareTarget(toDevice(labels)))
    refError, refGrad = weightedTorchReference(logits, labels, weights, kwargs.get("ignoreIndex", -100), smoothing,
                                               classAxis)
    assert error.shape == () and grad.dtype == np.float32 and grad.shape == logits.shape
    np.testing.assert_allclose(float(error), refError, rtol=1e-5)
    np.testing.assert_allclose(toHost(grad), refGrad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("layout", ["sequence", "classes1-map"])
@pytest.mark.parametrize("variant", variants)
def test_smoothed_and_class_axis_gradients_match_finite_differences(variant, layout):
    kwargs = variants[variant]
    logits, labels, classAxis = layoutData(layout, kwargs, np.float64)
    checkCostGrad(CrossEntropy(**kwargs, labelSmoothing=0.25, classAxis=classAxis), logits, toDevice(labels))


def test_smoothing_stays_finite_and_matches_torch_on_huge_logits():
    logits = np.array([[1e4, 0, -1e4], [-1e4, 1e4, 1e4], [1e4, -1e4, 0]], np.float32)
    labels = np.array([0, 2, 1], np.int32)
    error, grad = CrossEntropy(labelSmoothing=0.1)(toDevice(logits), toDevice(labels))
    refError, refGrad = weightedTorchReference(logits, labels, labelSmoothing=0.1)
    np.testing.assert_allclose(float(error), refError, rtol=1e-6)
    np.testing.assert_allclose(toHost(grad), refGrad, atol=1e-7)


def test_class_axis_one_counts_accuracy_per_position_leaving_out_ignored_ones():
    logits, labels = mapsAndLabels((2, 3, 2, 2), ignoreIndex=-1)
    cost = CrossEntropy(ignoreIndex=-1, classAxis=1)
    cost(toDevice(logits), cost.prepareTarget(toDevice(labels)))
    judged = labels != -1
    assert cost.getMetrics()["accuracy"] == pytest.approx(float(np.mean((logits.argmax(1) == labels)[judged])))
    assert int(toHost(cost.accumJudged)) == judged.sum()


def test_class_axis_one_takes_labels_without_the_class_axis_and_names_the_shape_expected():
    cost = CrossEntropy(classAxis=1, weights=[1.0, 2.0, 3.0])
    with pytest.raises(ShapeError, match=r"expected labels of shape \(2, 4, 5\), got \(2, 3, 4\)"):
        cost(toDevice(np.zeros((2, 3, 4, 5), np.float32)), toDevice(np.zeros((2, 3, 4), np.int32)))
    with pytest.raises(ShapeError, match=r"3 class weights for 4 classes"):
        cost(toDevice(np.zeros((2, 4, 5), np.float32)), toDevice(np.zeros((2, 5), np.int32)))
    assert cost.prepareTarget(np.zeros((2, 4, 5, 6))).shape == (2, 4, 5, 6)


@pytest.mark.parametrize("kwargs, message", [({"labelSmoothing": 1.5}, r"labelSmoothing must be a number in \[0, 1\], got 1.5"),
                                             ({"labelSmoothing": -0.1}, r"got -0.1"),
                                             ({"classAxis": 2}, r"classAxis must be -1 \(classes last\) or 1"),
                                             ({"classAxis": True}, r"classAxis must be")])
def test_bad_smoothing_and_class_axis_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CrossEntropy(**kwargs)


def test_accuracy_leaves_out_ignored_labels_and_counts_sequence_steps():
    logits = np.array([[[3, 1, 0], [0, 2, 1]], [[0, 1, 5], [4, 0, 0]]], np.float32)
    cost = CrossEntropy(ignoreIndex=-1)
    cost(toDevice(logits), toDevice(cost.prepareTarget(np.array([[0, -1], [1, 0]]))))
    assert cost.getMetrics()["accuracy"] == pytest.approx(2 / 3)
    assert isDeviceArray(cost.accumJudged) and int(toHost(cost.accumJudged)) == 3


def test_ignore_index_may_lie_beyond_the_classes_or_be_negative():
    cost = CrossEntropy(ignoreIndex=255)
    labels = cost.prepareTarget(np.array([0, 255, 2]))
    assert cost.maxLabel == 2
    error, _ = cost(toDevice(np.zeros((3, 3), np.float32)), toDevice(labels))
    assert float(error) == pytest.approx(np.log(3))
    with pytest.raises(LabelError, match=r"label -2 at index 1 is negative"):
        CrossEntropy(ignoreIndex=-1).prepareTarget(np.array([-1, -2]))


def test_a_sequence_label_out_of_range_is_named():
    with pytest.raises(LabelError, match=r"label -3 at index \(1, 0\) is negative"):
        CrossEntropy().prepareTarget(np.array([[0, 1], [-3, 2]]))


def test_class_weights_of_the_wrong_length_are_rejected():
    with pytest.raises(ShapeError, match=r"CrossEntropy: 3 class weights for 4 classes"):
        CrossEntropy(weights=[1, 2, 3])(toDevice(np.zeros((2, 4), np.float32)), toDevice(np.zeros(2, np.int32)))


@pytest.mark.parametrize("weights, message", [([1, -2, 3], r"class weight -2.0 at index 1 is not a finite number >= 0"),
                                              ([1, np.nan], r"class weight nan at index 1"),
                                              ([[1, 2]], r"expected class weights of shape \(classes,\), got \(1, 2\)")])
def test_bad_class_weights_are_rejected(weights, message):
    with pytest.raises((ValueError, ShapeError), match=message):
        CrossEntropy(weights=weights)


def test_ignore_index_must_be_an_integer():
    with pytest.raises(DtypeError, match=r"ignoreIndex must be an integer or None, got 1.5"):
        CrossEntropy(ignoreIndex=1.5)


@pytest.mark.parametrize("kwargs", [{}, {"ignoreIndex": -100}, {"ignoreIndex": 255, "weights": [1.0, 0.5, 2.0, 1.0]},
                                    {"labelSmoothing": 0.1}, {"labelSmoothing": 0.1, "ignoreIndex": -100,
                                                              "weights": [1.0, 0.5, 2.0, 1.0]}],
                         ids=["plain", "ignore", "ignoreAndWeights", "smoothed", "smoothedIgnoreAndWeights"])
def test_batches_given_straight_to_the_cost_never_wait_for_the_device(hostWaits, kwargs):
    """A loop of one's own, cost(net(x), deviceLabels), with labels that were never prepared: no batch reads
    the host (the range check and the ignored rows stay on the device), nor does the trainer's skip mode
    saving and restoring the accumulator; the results cost a bounded number of reads."""
    rng = np.random.default_rng(0)
    batches = []
    for size in (5, 8, 3):
        labels = rng.integers(0, 4, size).astype(np.int32)
        if "ignoreIndex" in kwargs:
            labels[::2] = kwargs["ignoreIndex"]
        batches.append((toDevice(rng.standard_normal((size, 4)).astype(np.float32)), toDevice(labels)))
    cost = CrossEntropy(**kwargs)
    before = hostWaits()
    for pred, target in batches:
        saved = cost.getAccumulator()
        cost(pred, target)
        cost.setAccumulator(saved)
        cost(pred, target)
        cost.validate(pred, target)
    assert hostWaits() == before
    cost.checkTargets()
    metrics = cost.getMetrics()
    assert hostWaits() - before <= 4 and np.isfinite(metrics["error"]) and 0 <= metrics["accuracy"] <= 1


@pytest.mark.cuda
def test_on_the_gpu_bad_labels_given_straight_are_clipped_and_raise_at_every_read_until_reset():
    cost = CrossEntropy(weights=[1.0, 2.0, 3.0], ignoreIndex=255)
    logits = toDevice(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    error, grad = cost(logits, toDevice(np.array([0, 7, 255, 1, -5], np.int32)))
    assert np.isfinite(float(error)) and np.isfinite(toHost(grad)).all()  # nothing read out of bounds
    for read in (cost.checkTargets, cost.getError, cost.getMetrics, cost.checkTargets):
        with pytest.raises(LabelError, match=r"CrossEntropy: label -5 is out of range for 3 classes \(labels not "
                                             r"given through prepareTarget are checked on the device"):
            read()
    cost.resetAccumulator()
    cost(logits, toDevice(np.array([0, 2, 255, 1, 0], np.int32)))
    assert np.isfinite(cost.getMetrics()["error"])
