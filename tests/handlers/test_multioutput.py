"""A model with two outputs (a Graph with a classification and a regression head, trained with Multi) goes
through every handler and Fit, from device arrays, NumPy arrays and an HDF5 file with two target datasets."""
import h5py
import numpy as np
import pytest

from macrobatch.costs import MSE, CrossEntropy
from macrobatch.costs.metrics import Accuracy
from macrobatch.costs.multi import Multi
from macrobatch.engine import setSeed, toDevice, toHost
from macrobatch.engine.errors import LabelError, ShapeError
from macrobatch.handlers import Calculator, Handler, Trainer, Validator
from macrobatch.handlers.callbacks import Callback, ModelCheckpoint, latestCheckpoint
from macrobatch.handlers.distributedvalidator import DistributedValidator
from macrobatch.handlers.fit import Fit, predict
from macrobatch.handlers.macrobatchsize import autoMacroBatchSize
from macrobatch.modules import Activation, Graph, Linear, Node, Sequential
from macrobatch.optimizers import SGD, Adam


def twoHeads(seed=0):
    """data -> Linear -> relu -> (3 class scores, 2 values)."""
    setSeed(seed)
    x = Node()
    hidden = Node(Activation("relu"), Node(Linear(6, 16), x))
    return Graph(x, [Node(Linear(16, 3), hidden), Node(Linear(16, 2), hidden)])


def samples(n=300, seed=0):
    """Data whose class is the argmax of its first three features and whose values are two more of them:
    every target is a function of its own sample, so a misaligned target shows."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, 6)).astype(np.float32)
    return data, data[:, :3].argmax(axis=1).astype(np.int64), (2 * data[:, 3:5]).astype(np.float32)


def multi():
    return Multi(CrossEntropy(), MSE(), weights=[1.0, 0.5])


def trainer(net, optimizer=None, batchsize=32):
    optimizer = optimizer or Adam(learnRate=1e-2)
    optimizer.setupOn(net)
    return Trainer(net, multi(), optimizer, batchsize=batchsize)


def weights(net):
    return {k: toHost(v.data).copy() for k, v in net.getVariables().items()}


def writeFile(path, data, labels, values):
    with h5py.File(path, "w") as f:
        f["data"], f["labels"], f["labels_1"] = data, labels, values


def test_train_on_device_data_lowers_both_costs():
    data, labels, values = samples()
    handler = trainer(twoHeads())
    errors = []
    for _ in range(8):
        handler.train(toDevice(data), [toDevice(labels), toDevice(values)])
        errors.append(handler.cost.getMetrics())
    assert errors[-1]["0.error"] < 0.5 * errors[0]["0.error"]
    assert errors[-1]["1.error"] < 0.5 * errors[0]["1.error"]
    assert errors[-1]["error"] == pytest.approx(errors[-1]["0.error"] + 0.5 * errors[-1]["1.error"], rel=1e-5)
    assert errors[-1]["0.accuracy"] > 0.85


def test_hdf5_with_two_target_datasets_numpy_and_device_data_train_identical_weights(tmp_path):
    data, labels, values = samples(250)
    writeFile(tmp_path / "d.h5", data, labels, values)
    results = []
    for source in ("device", "numpy", "h5py"):
        net = twoHeads()
        handler = trainer(net)
        if source == "device":
            handler.train(toDevice(data), (toDevice(labels.astype(np.int32)), toDevice(values)), random=False)
        elif source == "numpy":
            handler.trainFromHost(data, [labels, values], macroBatchSize=64, random=False)
        else:
            with h5py.File(tmp_path / "d.h5", "r") as f:
                handler.trainFromHost(f["data"], [f["labels"], f["labels_1"]], macroBatchSize=64, random=False)
        results.append(weights(net))
    for other in results[1:]:
        for key, ary in results[0].items():
            np.testing.assert_allclose(other[key], ary, rtol=1e-5, atol=1e-6, err_msg=key)


def test_train_from_hdf5_shuffled_lowers_both_costs(tmp_path):
    data, labels, values = samples()
    writeFile(tmp_path / "d.h5", data, labels, values)
    handler = trainer(twoHeads())
    errors = []
    with h5py.File(tmp_path / "d.h5", "r") as f:
        for _ in range(8):
            handler.trainFromHost(f["data"], [f["labels"], f["labels_1"]], macroBatchSize=100)
            errors.append(handler.cost.getMetrics())
    assert errors[-1]["0.error"] < 0.5 * errors[0]["0.error"]
    assert errors[-1]["1.error"] < 0.5 * errors[0]["1.error"]


class Recorder(Handler):
    """Keeps every batch it is handed, on the host."""

    def __init__(self, batchsize):
        super().__init__(Sequential(Linear(6, 1)), batchsize=batchsize)
        self.batches = []

    def handleBatch(self, batch, idx, state):
        data, (labels, values) = batch
        self.batches.append((toHost(data).copy(), toHost(labels).copy(), toHost(values).copy()))


@pytest.mark.parametrize("where", ["host", "device"])
def test_shuffled_batches_keep_every_target_with_its_sample(where):
    data, labels, values = samples(230)
    recorder = Recorder(batchsize=16)
    if where == "host":
        recorder.handleFromHost(data, [labels, values], macroBatchSize=64, random=True)
    else:
        recorder.handle(toDevice(data), [toDevice(labels), toDevice(values)], random=True)
    seen = np.concatenate([d for d, _, _ in recorder.batches])
    assert sorted(map(tuple, seen)) == sorted(map(tuple, data)) and not np.array_equal(seen, data)
    for d, l, v in recorder.batches:
        np.testing.assert_array_equal(l, d[:, :3].argmax(axis=1))
        np.testing.assert_array_equal(v, 2 * d[:, 3:5])


def test_a_batchs_gradients_equal_those_of_multi_by_hand():
    data, labels, values = samples(64)
    net = twoHeads()
    before = weights(net)
    handler = trainer(net, SGD(learnRate=0.0), batchsize=40)
    grads = []
    handler.onBatchFinish = lambda h: grads.append({k: toHost(v.grad).copy() for k, v in net.getVariables().items()})
    handler.trainFromHost(data, [labels, values], macroBatchSize=64, random=False)
    assert len(grads) == 2  # the weights did not move (learnRate 0): both batches start from `before`

    reference = twoHeads()
    optimizer = SGD()
    optimizer.setupOn(reference)
    for batch, part in enumerate((slice(0, 40), slice(40, 64))):
        cost = multi()
        target = cost.prepareTarget([toDevice(labels[part]), toDevice(values[part])])
        _, outGrads = cost(reference(toDevice(data[part])), target)
        optimizer.zeroGradParams()
        reference.backward(outGrads)
        for key, var in reference.getVariables().items():
            np.testing.assert_array_equal(weights(net)[key], before[key])
            np.testing.assert_allclose(grads[batch][key], toHost(var.grad), rtol=1e-5, atol=1e-7,
                                       err_msg=f"batch {batch} {key}")


def test_validate_from_host_is_multi_on_all_the_data_and_reports_each_cost(tmp_path):
    data, labels, values = samples(250)
    writeFile(tmp_path / "d.h5", data, labels, values)
    net = twoHeads()
    validator = Validator(net, multi(), batchsize=32)
    with h5py.File(tmp_path / "d.h5", "r") as f:
        error = validator.validateFromHost(f["data"], [f["labels"], f["labels_1"]], macroBatchSize=100)
    scores, predicted = net(toDevice(data))
    ce, _ = CrossEntropy()(scores, toDevice(labels.astype(np.int32)))
    mse, _ = MSE()(predicted, toDevice(values))
    assert error == pytest.approx(float(ce) + 0.5 * float(mse), rel=1e-5)
    assert validator.metrics["0.error"] == pytest.approx(float(ce), rel=1e-5)
    assert validator.metrics["1.error"] == pytest.approx(float(mse), rel=1e-5)
    accuracy = (toHost(scores).argmax(axis=1) == labels).mean()
    assert validator.metrics["0.accuracy"] == pytest.approx(accuracy)
    assert validator.validate(toDevice(data), [toDevice(labels), toDevice(values)]) == pytest.approx(error, rel=1e-6)


def test_calculator_returns_one_host_array_per_output_in_input_order(tmp_path):
    data, _, _ = samples(250)
    writeFile(tmp_path / "d.h5", data, np.zeros(250), np.zeros((250, 2)))
    net = twoHeads()
    net.evalMode()
    expected = [toHost(out).copy() for out in net(toDevice(data))]
    with h5py.File(tmp_path / "d.h5", "r") as f:
        fromFile = Calculator(net, batchsize=32).calcFromHost(f["data"], macroBatchSize=100)
    fromDevice = Calculator(net, batchsize=32).calc(toDevice(data))
    for outputs in (fromFile, fromDevice, predict(net, data, batchsize=32, macroBatchSize=100)):
        assert isinstance(outputs, list) and len(outputs) == 2
        for got, want in zip(outputs, expected):
            assert isinstance(got, np.ndarray) and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_single_output_stays_one_array():
    data, _, _ = samples(50)
    out = Calculator(Sequential(Linear(6, 3))).calc(toDevice(data))
    assert isinstance(out, np.ndarray) and out.shape == (50, 3)


def makeFit(callbacks=(), seed=0):
    net = twoHeads()
    optimizer = Adam(learnRate=1e-2)
    optimizer.setupOn(net)
    return Fit(net, multi(), optimizer, batchsize=32, macroBatchSize=100, callbacks=callbacks, seed=seed)


@pytest.mark.parametrize("where", ["host", "device"])
def test_fit_trains_validates_and_predicts(tmp_path, where):
    data, labels, values = samples()
    writeFile(tmp_path / "d.h5", data, labels, values)
    fit = makeFit()
    with h5py.File(tmp_path / "d.h5", "r") as f:
        if where == "host":
            train, target = f["data"], [f["labels"], f["labels_1"]]
        else:
            train, target = toDevice(data), [toDevice(labels), toDevice(values)]
        history = fit.run(train, target, epochs=6, valData=data[:100], valTarget=[labels[:100], values[:100]])
    for key in ("loss", "0.error", "1.error", "val_loss", "val_0.error", "val_1.error"):
        assert history[key][-1] < 0.6 * history[key][0], key
    assert history["val_0.accuracy"][-1] > 0.8
    assert isinstance(fit.validator.cost, Multi) and fit.validator.cost.weights == [1.0, 0.5]
    scores, predicted = predict(fit.mod, data)
    assert (scores.argmax(axis=1) == labels).mean() > 0.8
    assert np.mean((predicted - values) ** 2) < history["1.error"][0]


class StopAfter(Callback):
    """Interrupts the run after a given macrobatch of a given epoch (after the checkpoint is written)."""

    def __init__(self, epoch, macroBatches):
        self.epoch, self.macroBatches = epoch, macroBatches

    def onMacroBatchEnd(self, fit):
        if (fit.epoch, fit.position) == (self.epoch, self.macroBatches):
            raise KeyboardInterrupt


def test_a_run_resumed_between_two_macrobatches_continues_exactly(tmp_path):
    data, labels, values = samples()
    straight = makeFit()
    straight.run(data, [labels, values], epochs=2)
    first = makeFit([ModelCheckpoint(tmp_path, keepLast=None, everyMacroBatches=1), StopAfter(1, 2)])
    with pytest.raises(KeyboardInterrupt):
        first.run(data, [labels, values], epochs=2)
    resumed = makeFit().resume(latestCheckpoint(tmp_path))
    assert (resumed.epoch, resumed.position) == (1, 2)
    resumed.run(data, [labels, values], epochs=2)
    for key in ("loss", "0.error", "0.accuracy", "1.error"):
        np.testing.assert_allclose(resumed.history[key], straight.history[key], rtol=1e-6, err_msg=key)
    for key, ary in weights(straight.mod).items():
        np.testing.assert_allclose(weights(resumed.mod)[key], ary, rtol=1e-6, atol=1e-7, err_msg=key)


@pytest.mark.parametrize("target, message", [
    (lambda l, v: [l, v, v], r"target: Multi takes a list of 2 target arrays, one per output, got a list of 3"),
    (lambda l, v: l, r"target: Multi takes a list of 2 target arrays, one per output, got one array"),
    (lambda l, v: [l, v[:-1]], r"data has 300 samples but target\[1\] has 299"),
    (lambda l, v: [l[:-5], v], r"data has 300 samples but target\[0\] has 295"),
    (lambda l, v: [np.where(l == 2, -1, l), v], r"target\[0\]: CrossEntropy: label -1 at index \d+ is negative"),
])
@pytest.mark.parametrize("where", ["host", "device"])
def test_wrong_targets_are_refused_naming_the_target_before_any_update(target, message, where):
    data, labels, values = samples()
    net = twoHeads()
    before = weights(net)
    handler = trainer(net)
    given = target(labels, values)
    error = LabelError if "label" in message else ShapeError
    with pytest.raises(error, match=message):
        if where == "host":
            handler.trainFromHost(data, given, macroBatchSize=100)
        else:
            device = [toDevice(t) for t in given] if isinstance(given, list) else toDevice(given)
            handler.train(toDevice(data), device)
    for key, ary in before.items():
        np.testing.assert_array_equal(weights(net)[key], ary)


def test_a_list_of_targets_for_a_single_cost_or_model_is_refused():
    data, labels, values = samples()
    net = Sequential(Linear(6, 3))
    optimizer = Adam()
    optimizer.setupOn(net)
    with pytest.raises(ShapeError, match=r"target: CrossEntropy takes one target array, got a list of 2; use "
                                         r"costs.Multi"):
        Trainer(net, CrossEntropy(), optimizer).trainFromHost(data, [labels, values])
    with pytest.raises(ShapeError, match=r"the model returns one output, but the call gave a list of 2 target arrays"):
        Trainer(net, multi(), optimizer).trainFromHost(data, [labels, values])
    with pytest.raises(ShapeError, match=r"the model returns 2 outputs, but the call gave one target array"):
        Validator(twoHeads(), CrossEntropy()).validateFromHost(data, labels)


def test_validator_metric_objects_are_refused_with_a_list_of_targets():
    data, labels, values = samples()
    with pytest.raises(ValueError, match=r"metric objects \(Accuracy\) score one output"):
        Validator(twoHeads(), multi(), metrics=[Accuracy()]).validateFromHost(data, [labels, values])


class TwinComm:
    """Rank 0 of a stand-in job of two processes holding the same figures: every sum doubles."""

    rank, size = 0, 2

    def allreduce(self, ary):
        ary *= 2

    def sum(self, value):
        return 2 * value


def test_a_data_parallel_validator_sums_every_costs_accumulator_over_the_processes():
    data, labels, values = samples(200)
    validator = DistributedValidator(twoHeads(), multi(), TwinComm(), batchsize=32)
    error = validator.validateFromHost(data, [labels, values], macroBatchSize=64)
    alone = Validator(twoHeads(), multi(), batchsize=32).validateFromHost(data[:100], [labels[:100], values[:100]])
    assert error == pytest.approx(alone, rel=1e-6)  # this shard's figures, twice over
    assert [cost.accumCount for cost in validator.cost.costs] == [200, 200]


def test_auto_macrobatch_size_counts_every_targets_bytes():
    data, labels, values = samples(200)
    said = []
    autoMacroBatchSize(twoHeads(), 32, np.float32, data, [labels, values], say=said.append)
    assert "buffers of 40 bytes per sample" in said[0]  # 6 float32 values, an int64 label, 2 float32 values
    handler = trainer(twoHeads())
    handler.trainFromHost(data, [labels, values], macroBatchSize="auto")
    assert handler.macroBatchSize == 200 and handler.cost.costs[1].accumCount == 200
