"""Fit with a DifferentialPrivacy optimizer: epsilon in the history against an accountant of its own for the
steps taken, a checkpoint resumed mid-run continuing epsilon exactly, Poisson sampling on, refusals (with
gradient accumulation: tests/privacy/test_dp_accumulation.py)."""
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed
from macrobatch.engine.backend import toDevice
from macrobatch.engine.errors import ModelFileError
from macrobatch.handlers.fit import Fit, resident
from macrobatch.modules import Activation, Linear, Sequential
from macrobatch.optimizers import SGD
from macrobatch.privacy.accountant import epsilon
from macrobatch.privacy.differentialprivacy import DifferentialPrivacy

SAMPLES, BATCH, MACRO, NOISE = 200, 16, 64, 1.1


def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((SAMPLES, 6)).astype(np.float32), rng.integers(0, 3, SAMPLES).astype(np.int32)


def privateFit(noise=NOISE, delta=1e-5, **kwargs):
    setSeed(4)
    net = Sequential(Linear(6, 8), Activation("relu"), Linear(8, 3))
    optimizer = DifferentialPrivacy(SGD(learnRate=0.05), clipNorm=1.0, noiseMultiplier=noise).setupOn(net)
    return Fit(net, CrossEntropy(), optimizer, batchsize=BATCH, macroBatchSize=MACRO, seed=7, privacyDelta=delta,
               **kwargs)


def stepsPerEpoch():
    """Batches of the host walk: macrobatches of 64, 64, 64, 8 samples, ceil(m / 16) batches each."""
    return 3 * 4 + 1


def test_history_epsilon_is_the_accountants_for_the_steps_taken():
    fit = privateFit()
    x, y = data()
    history = fit.run(x, y, 3)
    assert fit.trainer.poisson and fit.trainer.sampleRate == BATCH / MACRO
    assert fit.optimizer.steps == 3 * stepsPerEpoch()
    expected = [epsilon(e * stepsPerEpoch(), BATCH / MACRO, NOISE, 1e-5) for e in (1, 2, 3)]
    np.testing.assert_allclose(history["epsilon"], expected, rtol=1e-12)
    assert history["epsilon"][0] < history["epsilon"][1] < history["epsilon"][2]


def test_device_arrays_account_at_the_walks_sample_rate():
    """On the GPU (resident) one walk over all samples: rate batchsize / samples; elsewhere the host walk's."""
    fit = privateFit(delta=1e-6)
    x, y = data()
    x, y = toDevice(x), toDevice(y)
    rate = BATCH / SAMPLES if resident(x) else BATCH / MACRO
    history = fit.run(x, y, 2)
    assert fit.trainer.sampleRate == rate
    perEpoch = -(-SAMPLES // BATCH)  # 13 either way
    np.testing.assert_allclose(history["epsilon"], [epsilon(e * perEpoch, rate, NOISE, 1e-6) for e in (1, 2)],
                               rtol=1e-12)


def test_a_resumed_run_continues_epsilon_exactly(tmp_path):
    x, y = data()
    straight = privateFit().run(x, y, 3)
    first = privateFit()
    first.run(x, y, 2)
    first.saveCheckpoint(tmp_path / "ckpt.h5")
    resumed = privateFit().resume(tmp_path / "ckpt.h5")
    assert resumed.accountant.steps == 2 * stepsPerEpoch()
    history = resumed.run(x, y, 3)
    assert history["epsilon"] == straight["epsilon"]


def test_a_checkpoint_between_macrobatches_holds_their_steps():
    x, y = data()
    fit = privateFit()
    seen = []

    class Probe:
        def __getattr__(self, name):
            return lambda *args: None

        def onMacroBatchEnd(self, fit):
            seen.append(fit.getState()["privacy"]["steps"])
    fit.callbacks.append(Probe())
    fit.run(x, y, 1)
    assert seen[-1] == stepsPerEpoch()  # the macrobatches come in a shuffled order: 4, 4, 4 and 1 steps
    assert sorted(np.diff([0] + seen).tolist()) == [1, 4, 4, 4]


def test_resuming_a_private_run_without_privacy_is_refused(tmp_path):
    x, y = data()
    fit = privateFit()
    fit.run(x, y, 1)
    fit.saveCheckpoint(tmp_path / "ckpt.h5")
    setSeed(4)
    net = Sequential(Linear(6, 8), Activation("relu"), Linear(8, 3))
    plain = Fit(net, CrossEntropy(), SGD().setupOn(net), batchsize=BATCH, macroBatchSize=MACRO)
    with pytest.raises(ModelFileError, match="with differential privacy"):
        plain.resume(tmp_path / "ckpt.h5")
    assert plain.epoch == 0 and "epsilon" not in plain.getState()["history"]


def test_a_plain_fit_logs_no_epsilon():
    setSeed(4)
    net = Sequential(Linear(6, 3))
    fit = Fit(net, CrossEntropy(), SGD().setupOn(net), batchsize=BATCH, macroBatchSize=MACRO)
    x, y = data()
    assert "epsilon" not in fit.run(x, y, 1) and not fit.trainer.poisson


def test_a_bad_delta_is_refused():
    net = Sequential(Linear(6, 3))
    with pytest.raises(ValueError, match="delta"):
        Fit(net, CrossEntropy(), DifferentialPrivacy(SGD(), 1.0, 1.0).setupOn(net), privacyDelta=1.0)
