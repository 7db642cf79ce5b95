"""Trainer: the loss falls, the three data paths agree, and bad input stops before any update."""
import h5py
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy, MSE
from macrobatch.engine import backend, setSeed, toDevice, toHost
from macrobatch.engine.errors import LabelError, NonFiniteError, ShapeError
from macrobatch.handlers import Trainer
from macrobatch.modules import Activation, Linear, Sequential
from macrobatch.optimizers import SGD, Adam


def blobs(n=600, seed=0):
    """Three Gaussian blobs in 8 dimensions: an easy classification problem."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    data = rng.standard_normal((n, 8)).astype(np.float32) + 3 * np.eye(3, 8, dtype=np.float32)[labels]
    return data, labels


def setup(optimizer=None, batchsize=32, seed=0):
    setSeed(seed)
    net = Sequential(Linear(8, 16), Activation("relu"), Linear(16, 3))
    optimizer = optimizer or Adam(learnRate=1e-2)
    optimizer.setupOn(net)
    return net, Trainer(net, CrossEntropy(), optimizer, batchsize=batchsize)


def weights(net):
    return {k: toHost(v.data).copy() for k, v in net.getVariables().items()}


def test_training_lowers_the_loss_and_reaches_high_accuracy():
    data, labels = blobs()
    net, trainer = setup()
    losses = []
    for _ in range(5):
        trainer.trainFromHost(data, labels, macroBatchSize=200)
        losses.append(trainer.cost.getError())
    assert losses[-1] < 0.3 * losses[0]
    assert trainer.cost.getMetrics()["accuracy"] > 0.95


def test_host_array_h5py_dataset_and_device_array_give_identical_weights(tmp_path):
    data, labels = blobs(500)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"], f["labels"] = data, labels
    results = []
    for source in ("numpy", "h5py", "device"):
        net, trainer = setup()
        if source == "device":
            trainer.train(toDevice(data), toDevice(labels.astype(np.int32)), random=False)
        elif source == "h5py":
            with h5py.File(tmp_path / "d.h5", "r") as f:
                trainer.trainFromHost(f["data"], f["labels"], macroBatchSize=128, random=False)
        else:
            trainer.trainFromHost(data, labels, macroBatchSize=128, random=False)
        results.append(weights(net))
    for other in results[1:]:
        for key in results[0]:
            np.testing.assert_array_equal(other[key], results[0][key])


def test_same_seed_gives_bit_identical_weights_with_shuffling():
    data, labels = blobs(300)
    runs = []
    for _ in range(2):
        net, trainer = setup(seed=5)
        trainer.trainFromHost(data, labels, macroBatchSize=100, random=True)
        runs.append(weights(net))
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


def test_each_call_resets_the_error_and_switches_to_train_mode():
    data, labels = blobs(100)
    net, trainer = setup()
    trainer.trainFromHost(data, labels, macroBatchSize=100)
    net.evalMode()
    trainer.trainFromHost(data[:10], labels[:10], macroBatchSize=100)
    assert trainer.cost.accumCount == 10 and all(m.train for _, m in net.namedModules())


def test_callbacks_see_batch_and_macrobatch_progress():
    data, labels = blobs(250)
    seen = []
    net, trainer = setup(batchsize=50)
    trainer.onBatchFinish = lambda t: seen.append(("batch", t.currBatch, t.totalBatches))
    trainer.trainFromHost(data, labels, macroBatchSize=100, random=False,
                          onMacroBatchFinish=lambda t: seen.append(("macro", t.currMacroBatch, t.totalMacroBatches)))
    assert seen == [("batch", 0, 5), ("batch", 1, 5), ("macro", 0, 3), ("batch", 2, 5), ("batch", 3, 5),
                    ("macro", 1, 3), ("batch", 4, 5), ("macro", 2, 3)]


def test_learn_rate_set_between_calls_is_used():
    data, labels = blobs(64)
    net, trainer = setup(optimizer=SGD(learnRate=0.1))
    trainer.optimizer.learnRate = 0.0
    before = weights(net)
    trainer.trainFromHost(data, labels, macroBatchSize=64)
    after = weights(net)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_label_out_of_range_stops_before_any_update():
    data, labels = blobs(100)
    labels[70] = 3
    net, trainer = setup()
    before = weights(net)
    with pytest.raises(LabelError, match="label 3 is out of range for 3 classes"):
        trainer.trainFromHost(data, labels, macroBatchSize=100)
    assert all(np.array_equal(before[k], toHost(v.data)) for k, v in net.getVariables().items())


@pytest.mark.parametrize("bad,message", [(-1, "negative"), (1.5, "not an integer")])
def test_negative_or_fractional_labels_are_refused(bad, message):
    data, labels = blobs(50)
    labels = labels.astype(np.float64)
    labels[7] = bad
    net, trainer = setup()
    with pytest.raises(LabelError, match=message):
        trainer.trainFromHost(data, labels, macroBatchSize=50)


def test_data_that_does_not_fit_the_first_layer_names_expected_and_got():
    net, trainer = setup()
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 8\), got \(32, 5\)"):
        trainer.trainFromHost(np.zeros((64, 5), np.float32), np.zeros(64, np.int64))


@pytest.mark.skipif(backend.isCuda, reason="the GPU path checks the loss once per macrobatch, without a per-batch "
                                            "sync (Trainer's docstring); see the test below")
def test_nan_loss_stops_training_naming_the_batch_and_skips_the_step():
    data, labels = blobs(200)
    data[150] = np.nan
    net, trainer = setup(batchsize=50)
    trainer.checkFinite = False  # let the NaN through the data check, to reach the loss check
    snapshots = []
    trainer.onBatchFinish = lambda t: snapshots.append(weights(net))
    with pytest.raises(NonFiniteError, match=r"loss became nan at batch 3 \(macrobatch 0, samples 150..199"):
        trainer.trainFromHost(data, labels, macroBatchSize=200, random=False)
    assert len(snapshots) == 3
    assert all(np.array_equal(snapshots[-1][k], toHost(v.data)) for k, v in net.getVariables().items())


@pytest.mark.cuda
def test_on_the_gpu_a_nan_loss_stops_training_at_the_end_of_its_macrobatch():
    data, labels = blobs(400)
    data[150] = np.nan
    net, trainer = setup(batchsize=50)
    trainer.checkFinite = False
    batches = []
    trainer.onBatchFinish = lambda t: batches.append(t.currBatch)
    with pytest.raises(NonFiniteError, match=r"loss became nan at macrobatch 0;"):
        trainer.trainFromHost(data, labels, macroBatchSize=200, random=False)
    assert batches == [0, 1, 2, 3]  # the rest of macrobatch 0, nothing of macrobatch 1


def test_regression_with_mse_fits_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 4)).astype(np.float32)
    y = x @ rng.standard_normal((4, 2)).astype(np.float32)
    setSeed(0)
    net = Linear(4, 2)
    optimizer = Adam(learnRate=0.05)
    optimizer.setupOn(net)
    trainer = Trainer(net, MSE(), optimizer, batchsize=64)
    for _ in range(30):
        trainer.train(toDevice(x), toDevice(y))
    assert trainer.cost.getError() < 1e-3
