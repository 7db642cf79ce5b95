"""DP-SGD with gradient accumulation: under Poisson sampling one logical batch is drawn per optimizer step and cut
into the k batches of a GradientAccumulation group (Handler batchesPerStep). Each sample is in at most once per
step, logical batch sizes are Binomial(M, q) at the logical rate, the noiseless accumulated step is DP-SGD on the
whole logical batch, Fit accounts one step per logical batch at that rate and resumes exactly, no host
synchronisation per batch."""
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.handlers import Trainer
from macrobatch.handlers.fit import Fit
from macrobatch.handlers.handler import Handler
from macrobatch.modules import Activation, Linear, Sequential
from macrobatch.optimizers import SGD, GradientAccumulation
from macrobatch.privacy.accountant import epsilon
from macrobatch.privacy.differentialprivacy import DifferentialPrivacy


class Recorder(Handler):
    """Records the sample indices of every batch (the data is the indices) and the macrobatch it came from."""

    def __init__(self, batchsize, perStep):
        super().__init__(Sequential(Linear(1, 1)), batchsize=batchsize, poisson=True)
        self.batchesPerStep = perStep
        self.batches, self.macroBatches = [], []

    def handleBatch(self, batch, idx, state):
        self.batches.append(toHost(batch[0]).ravel().astype(int))
        self.macroBatches.append(state["macroBatch"])

    def steps(self):
        """The logical batches: the recorded batches in groups of batchesPerStep."""
        k = self.batchesPerStep
        return [self.batches[i:i + k] for i in range(0, len(self.batches), k)]


def indices(n):
    return np.arange(n, dtype=np.float32).reshape(-1, 1)


def test_each_sample_is_in_at_most_one_batch_of_a_logical_step_and_steps_stay_in_their_macrobatch():
    recorder = Recorder(batchsize=20, perStep=4)
    for _ in range(10):
        recorder.handleFromHost(indices(1000), macroBatchSize=300)  # macrobatches of 300, 300, 300, 100
    assert recorder.sampleRate == 4 * 20 / 300
    assert recorder.totalBatches == 4 * (3 * 4 + 2) and len(recorder.batches) == 10 * recorder.totalBatches
    for step in recorder.steps():
        members = np.concatenate(step)
        assert len(np.unique(members)) == len(members)
        assert np.ptp([len(piece) for piece in step]) <= 1  # pieces as even as possible
        assert len(np.unique(members // 300)) <= 1  # all from one macrobatch's span of samples
    assert all(len(set(recorder.macroBatches[i:i + 4])) == 1 for i in range(0, len(recorder.macroBatches), 4))


def test_logical_batch_sizes_are_binomial_at_the_logical_rate_and_samples_independent():
    n, batchsize, perStep, calls = 2000, 25, 4, 40
    recorder = Recorder(batchsize, perStep)
    for _ in range(calls):
        recorder.handle(toDevice(indices(n)))
    q = recorder.sampleRate
    assert q == perStep * batchsize / n and len(recorder.batches) == calls * n // batchsize
    sizes = np.array([sum(len(piece) for piece in step) for step in recorder.steps()])
    steps = len(sizes)
    assert abs(sizes.mean() - n * q) < 4 * np.sqrt(n * q * (1 - q) / steps)
    assert abs(sizes.var() / (n * q * (1 - q)) - 1) < 0.3
    member = np.zeros((steps, n), dtype=bool)
    for k, step in enumerate(recorder.steps()):
        member[k, np.concatenate(step)] = True
    assert abs(member.mean() - q) < 4 * np.sqrt(q * (1 - q) / member.size)
    both = (member[:, :-1] & member[:, 1:]).mean()
    assert abs(both / q ** 2 - 1) < 0.15


def network():
    setSeed(5)
    return Sequential(Linear(6, 8), Activation("relu"), Linear(8, 3))


def classification(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 3, n).astype(np.int32)


class PieceTrainer(Trainer):
    """A Trainer that keeps each batch's data (host copies) and the weights after the first k batches."""

    def handleBatch(self, batch, idx, state):
        self.pieces.append((toHost(batch[0]).copy(), toHost(batch[1]).copy()))
        super().handleBatch(batch, idx, state)
        if idx == self.batchesPerStep - 1:
            self.firstStep = weights(self.mod)


def weights(net):
    return {name: toHost(var.data).copy() for name, var in net.getVariables().items()}


def test_noiseless_accumulated_pieces_are_dp_sgd_on_the_whole_logical_batch():
    k, batchsize, clip = 3, 8, 0.05  # a small clip norm: most samples are clipped
    x, y = classification(200)
    net = network()
    optimizer = GradientAccumulation(DifferentialPrivacy(SGD(0.5), clip, 0.0), k).setupOn(net)
    trainer = PieceTrainer(net, CrossEntropy(), optimizer, batchsize=batchsize, poisson=True)
    trainer.pieces = []
    assert trainer.batchesPerStep == k
    trainer.train(toDevice(x), toDevice(y))
    logical = [np.concatenate(part) for part in zip(*trainer.pieces[:k])]
    assert len(logical[0]) > 2 * batchsize  # a real step of several pieces
    reference = network()
    whole = DifferentialPrivacy(SGD(0.5), clip, 0.0, expectedBatchSize=k * batchsize).setupOn(reference)
    Trainer(reference, CrossEntropy(), whole, batchsize=len(logical[0])).train(*map(toDevice, logical), random=False)
    expected = weights(reference)
    for name, value in trainer.firstStep.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-7)


SAMPLES, BATCH, K, MACRO, NOISE = 200, 16, 2, 64, 1.1  # macrobatches 64, 64, 64, 8: 2, 2, 2, 1 logical steps


def accumulatedFit(**kwargs):
    net = network()
    optimizer = GradientAccumulation(DifferentialPrivacy(SGD(0.05), 1.0, NOISE), K).setupOn(net)
    return Fit(net, CrossEntropy(), optimizer, batchsize=BATCH, macroBatchSize=MACRO, seed=7, **kwargs)


class Probe:
    """A callback that records what each macrobatch's end sees, and runs extra(fit) there."""

    def __init__(self, extra=None):
        self.pending, self.extra = [], extra

    def __getattr__(self, name):
        return lambda *args: None

    def onMacroBatchEnd(self, fit):
        self.pending.append(fit.optimizer.pending)
        if self.extra is not None:
            self.extra(fit)


def test_fit_accounts_one_step_per_logical_batch_at_the_logical_rate():
    probe = Probe()
    fit = accumulatedFit(callbacks=[probe])
    history = fit.run(*classification(SAMPLES), 3)
    rate, perEpoch = K * BATCH / MACRO, 2 + 2 + 2 + 1
    assert fit.trainer.sampleRate == rate and fit.trainer.totalBatches == K * perEpoch
    assert fit.optimizer.steps == 3 * perEpoch  # the epoch-end flush added no step
    assert probe.pending == [0] * 12  # no group straddles a macrobatch, so a checkpoint there holds none
    np.testing.assert_allclose(history["epsilon"], [epsilon(e * perEpoch, rate, NOISE, 1e-5) for e in (1, 2, 3)],
                               rtol=1e-12)


def test_k_batches_of_b_train_as_one_private_batch_of_k_times_b_noise_included():
    """The same seeds draw the same logical batches and noise either way: only the rounding of the sums differs."""
    x, y = classification(SAMPLES)
    accumulated = accumulatedFit()
    accumulated.run(x, y, 2)
    net = network()
    whole = Fit(net, CrossEntropy(), DifferentialPrivacy(SGD(0.05), 1.0, NOISE).setupOn(net), batchsize=K * BATCH,
                macroBatchSize=MACRO, seed=7)
    history = whole.run(x, y, 2)
    assert accumulated.history["epsilon"] == history["epsilon"]
    expected = weights(net)
    for name, value in weights(accumulated.mod).items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-4, atol=1e-6)


def test_a_run_resumed_between_macrobatches_continues_exactly(tmp_path):
    x, y = classification(SAMPLES)
    straight = accumulatedFit()
    straightHistory = straight.run(x, y, 2)

    def save(fit):
        if fit.epoch == 1 and fit.position == 2:
            fit.saveCheckpoint(tmp_path / "mid.h5")
    accumulatedFit(callbacks=[Probe(save)]).run(x, y, 2)
    resumed = accumulatedFit().resume(tmp_path / "mid.h5")
    assert resumed.position == 2 and resumed.optimizer.pending == 0
    history = resumed.run(x, y, 2)
    assert history["epsilon"] == straightHistory["epsilon"] and history["loss"] == straightHistory["loss"]
    assert resumed.optimizer.steps == straight.optimizer.steps
    expected = weights(straight.mod)
    for name, value in weights(resumed.mod).items():
        np.testing.assert_array_equal(value, expected[name])


def test_a_poisson_call_refuses_a_pending_group_before_it_starts():
    x, y = classification(20)
    net = network()
    optimizer = GradientAccumulation(DifferentialPrivacy(SGD(0.1), 1.0, 1.0), 4).setupOn(net)
    Trainer(net, CrossEntropy(), optimizer, batchsize=6).train(toDevice(x), toDevice(y))  # 4 batches: none pending
    Trainer(net, CrossEntropy(), optimizer, batchsize=10).train(toDevice(x), toDevice(y))  # 2 batches: 2 pending
    before = weights(net)
    with pytest.raises(ValueError, match="2 pending batch"):
        Trainer(net, CrossEntropy(), optimizer, batchsize=5, poisson=True).train(toDevice(x), toDevice(y))
    assert optimizer.pending == 2 and optimizer.steps == 1
    for name, value in weights(net).items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.cuda
def test_accumulated_private_poisson_training_makes_no_host_synchronisation_per_batch(hostWaits):
    x, y = classification(400)
    net = network()
    optimizer = GradientAccumulation(DifferentialPrivacy(SGD(0.1), 1.0, 1.0), 3).setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=10, poisson=True)

    def syncs(samples):
        before = hostWaits()
        trainer.train(toDevice(x[:samples]), toDevice(y[:samples]))
        return hostWaits() - before

    syncs(400)  # compiles the kernels
    assert syncs(60) == syncs(400)
