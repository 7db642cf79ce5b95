"""NaN and Inf: in the data they stop a call before any step uses them; in a loss or gradients they stop
training (onNonFinite="raise") or the batch is skipped with the weights untouched (onNonFinite="skip")."""
import numpy as np
import pytest

from macrobatch.costs import MSE, CrossEntropy
from macrobatch.engine import backend, setSeed, toDevice
from macrobatch.engine.errors import NonFiniteError
from macrobatch.handlers import Calculator, Validator
from macrobatch.handlers.fit import Fit
from macrobatch.modules import Linear
from macrobatch.optimizers.schedules import LinearWarmup
from macrobatch.optimizers import SGD, Adam, GradientAccumulation


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_host_data_stops_before_any_batch_of_its_macrobatch_naming_sample_and_macrobatch(
        classifier, blobs, weights, sameWeights, bad):
    data, labels = blobs(300)
    data[237, 5] = bad
    net, trainer = classifier(batchsize=50)
    snapshots = []
    trainer.onBatchFinish = lambda t: snapshots.append(weights(net))
    with pytest.raises(NonFiniteError, match=r"^data: NaN or Inf in sample 237 \(samples 200..299, macrobatch 2 of 3\)"):
        trainer.trainFromHost(data, labels, macroBatchSize=100, random=False)
    assert len(snapshots) == 4  # macrobatches 0 and 1 trained, not one batch of macrobatch 2
    assert sameWeights(snapshots[-1], weights(net))


def test_nan_in_regression_targets_is_refused_naming_the_targets(classifier, blobs, weights, sameWeights):
    data, _ = blobs(100)
    target = np.zeros((100, 3), np.float32)
    target[3, 1] = np.nan
    net, trainer = classifier(batchsize=10, cost=MSE())
    before = weights(net)
    with pytest.raises(NonFiniteError, match=r"^target: NaN or Inf in sample 3 \(samples 0..99, macrobatch 0 of 1\)"):
        trainer.trainFromHost(data, target, macroBatchSize=100)
    assert sameWeights(before, weights(net))


def test_nan_in_device_data_is_found_once_per_call_before_any_update(classifier, blobs, weights, sameWeights):
    data, labels = blobs(100)
    data[99, 0] = np.nan
    net, trainer = classifier(batchsize=10)
    before = weights(net)
    with pytest.raises(NonFiniteError, match=r"^data: NaN or Inf in sample 99 \(the 100 samples of the call\)"):
        trainer.train(toDevice(data), toDevice(labels))
    assert sameWeights(before, weights(net))


def test_validator_and_calculator_refuse_nan_data_unless_told_not_to_check(classifier, blobs):
    data, labels = blobs(40)
    data[11, 2] = np.nan
    net, _ = classifier()
    with pytest.raises(NonFiniteError, match="sample 11"):
        Validator(net, CrossEntropy(), batchsize=8).validateFromHost(data, labels)
    with pytest.raises(NonFiniteError, match="sample 11"):
        Calculator(net, batchsize=8).calc(toDevice(data))
    out = Calculator(net, batchsize=8, checkFinite=False).calcFromHost(data)
    assert np.isnan(out[11]).all() and np.isfinite(np.delete(out, 11, axis=0)).all()


def test_unknown_on_non_finite_policy_is_refused(classifier):
    with pytest.raises(ValueError, match="onNonFinite must be 'raise' or 'skip', got 'ignore'"):
        classifier(onNonFinite="ignore")


def test_skip_is_refused_with_gradient_accumulation(classifier):
    with pytest.raises(ValueError, match="onNonFinite='skip' cannot be used with GradientAccumulation"):
        classifier(optimizer=GradientAccumulation(SGD(0.1), 2), onNonFinite="skip")


@pytest.mark.parametrize("resident", [False, True])
def test_skip_leaves_out_a_nan_loss_batch_exactly_as_if_its_samples_were_not_there(
        classifier, blobs, weights, sameWeights, resident):
    data, labels = blobs(200)
    bad = data.copy()
    bad[120, 3] = np.nan  # in batch 2 (samples 100..149)
    clean = np.delete(data, np.s_[100:150], axis=0), np.delete(labels, np.s_[100:150])
    net, trainer = classifier(batchsize=50, checkFinite=False, onNonFinite="skip")
    if resident:
        trainer.train(toDevice(bad), toDevice(labels), random=False)
    else:
        trainer.trainFromHost(bad, labels, macroBatchSize=200, random=False)
    refNet, reference = classifier(batchsize=50)
    reference.trainFromHost(*clean, macroBatchSize=150, random=False)
    assert trainer.skippedBatches == 1 and trainer.optimizer.steps == 3
    assert sameWeights(weights(net), weights(refNet))
    assert trainer.cost.getError() == reference.cost.getError()


class GradSpike(MSE):
    """MSE whose gradient is Inf on the batches listed in ``spikes`` (the loss stays finite)."""

    def __init__(self, spikes):
        super().__init__()
        self.spikes, self.batches = spikes, 0

    def calcGrad(self, pred, target):
        grad = super().calcGrad(pred, target)
        if self.batches in self.spikes:
            grad[0, 0] = np.inf
        self.batches += 1
        return grad


def regression(n=120):
    rng = np.random.default_rng(2)
    data = rng.standard_normal((n, 8)).astype(np.float32)
    return data, (data[:, :3] * 2).astype(np.float32)


@pytest.mark.skipif(backend.isCuda, reason="the GPU path checks gradients once per macrobatch, without a per-batch "
                                            "sync (Trainer's docstring); see the test below")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_infinite_gradient_with_finite_loss_stops_training_naming_the_batch_before_its_step(classifier, weights):
    net, trainer = classifier(batchsize=20, cost=GradSpike({2}))
    snapshots = []
    trainer.onBatchFinish = lambda t: snapshots.append(weights(net))
    with pytest.raises(NonFiniteError, match=r"parameter gradients became NaN or Inf at batch 2 \(macrobatch 0, "
                                             r"samples 40..59 of it\) with a finite loss"):
        trainer.trainFromHost(*regression(), macroBatchSize=120, random=False)
    assert len(snapshots) == 2
    assert all(np.array_equal(snapshots[-1][k], w) for k, w in weights(net).items())


@pytest.mark.cuda
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_on_the_gpu_an_infinite_gradient_with_finite_loss_stops_at_the_end_of_its_macrobatch(classifier, weights):
    # spike in the last batch of macrobatch 0: its loss stays finite, only the gradient flag can tell
    net, trainer = classifier(batchsize=20, cost=GradSpike({2}))
    macroBatches = []
    with pytest.raises(NonFiniteError, match=r"parameter gradients became NaN or Inf in macrobatch 0 with a finite loss"):
        trainer.trainFromHost(*regression(), macroBatchSize=60, random=False,
                              onMacroBatchFinish=lambda t: macroBatches.append(t.currMacroBatch))
    assert macroBatches == [] and trainer.currBatch == 3  # macrobatch 1 never started


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_skip_drops_batches_with_infinite_gradients_and_keeps_training_on_the_rest(classifier, weights, sameWeights):
    data, target = regression()
    net, trainer = classifier(batchsize=20, cost=GradSpike({1, 4}), optimizer=Adam(1e-2), onNonFinite="skip")
    trainer.trainFromHost(data, target, macroBatchSize=120, random=False)
    keep = np.r_[0:20, 40:80, 100:120]
    refNet, reference = classifier(batchsize=20, cost=MSE(), optimizer=Adam(1e-2))
    reference.trainFromHost(data[keep], target[keep], macroBatchSize=120, random=False)
    assert trainer.skippedBatches == 2 and trainer.optimizer.steps == 4
    assert sameWeights(weights(net), weights(refNet))
    assert all(np.isfinite(w).all() for w in weights(net).values())
    trainer.cost.spikes = set()
    trainer.trainFromHost(data, target, macroBatchSize=120, random=False)
    assert trainer.skippedBatches == 0  # counted per call; the skipped NaN gradients left nothing behind



@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_fit_with_skip_does_not_advance_a_per_batch_schedule_on_skipped_batches():
    data, target = regression()
    setSeed(0)
    net = Linear(8, 3)
    optimizer = SGD(0.01)
    optimizer.setupOn(net)
    schedule = LinearWarmup(optimizer, 100)
    fit = Fit(net, GradSpike({1, 4}), optimizer, batchsize=20, macroBatchSize=120, schedule=schedule, random=False,
              valCost=MSE(), onNonFinite="skip")
    fit.run(data, target, epochs=1)
    assert fit.trainer.skippedBatches == 2 and optimizer.steps == 4
    assert schedule.steps == 4
