"""DP-SGD (privacy/differentialprivacy.py) and Poisson sampling (Handler poisson=True): the clipped sum against
per-sample gradients clipped and summed on the host, ghost against materialised norms, a noiseless unclipped
step against the ordinary one, the noise's standard deviation, Poisson batch statistics, refusals, no host
synchronisation per batch, and a model that learns the digits privately. The references here are independent
computations; tests/privacy/test_opacus.py compares with Opacus itself."""
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.datasets import loadDigits
from macrobatch.engine import setSeed
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import PerSampleError
from macrobatch.handlers import Trainer
from macrobatch.handlers.handler import Handler
from macrobatch.modules import Activation, BatchNorm1D, Conv2D, Flatten, GroupNorm, Linear, Sequential
from macrobatch.modules.persample import perSampleGradients
from macrobatch.optimizers import SGD, GradientAccumulation
from macrobatch.privacy.differentialprivacy import DifferentialPrivacy


def convNet(dtype=np.float32):
    setSeed(3)
    return Sequential(Conv2D(1, 3, 3, pad=1), GroupNorm(1, 3), Activation("relu"), Flatten(),
                      Linear(3 * 4 * 4, 5)).cast(dtype)


def batch(n=12, dtype=np.float32):
    rng = np.random.default_rng(5)
    return rng.standard_normal((n, 1, 4, 4)).astype(dtype), rng.integers(0, 5, n)


def clippedGrads(net, dp, data, labels):
    """The gradients a Trainer's backward leaves after dp.clippedOutputGrad, as host arrays by name."""
    cost = CrossEntropy()
    _, grad = dp.clippedOutputGrad(net, cost, net(toDevice(data)), cost.prepareTarget(toDevice(labels)))
    for var in net.getVariables().values():
        var.zeroGrad()
    net.backward(grad, updGrad=False)
    return {name: toHost(var.grad).copy() for name, var in net.getVariables().items()}


def hostClippedSum(net, data, labels, clipNorm):
    """Per-sample gradients clipped and summed on the host, in float64; and the per-sample norms."""
    cost = CrossEntropy()
    rows = {name: toHost(g).astype(np.float64) for name, g in
            perSampleGradients(net, cost, toDevice(data), cost.prepareTarget(toDevice(labels))).items()}
    norms = np.sqrt(sum((g.reshape(g.shape[0], -1) ** 2).sum(axis=1) for g in rows.values()))
    factors = np.minimum(1.0, clipNorm / norms)
    return {name: np.tensordot(factors, g, 1) for name, g in rows.items()}, norms


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-10, 1e-12), (np.float32, 1e-4, 1e-5)])
@pytest.mark.parametrize("ghost", [True, False])
def test_clipped_sum_equals_host_clipping_of_per_sample_gradients(dtype, rtol, atol, ghost):
    net = convNet(dtype)
    data, labels = batch(dtype=dtype)
    want, norms = hostClippedSum(net, data, labels, clipNorm=1.0)
    clipNorm = float(np.median(norms))  # half the samples clipped, half not
    want, _ = hostClippedSum(net, data, labels, clipNorm)
    got = clippedGrads(net, DifferentialPrivacy(SGD(), clipNorm, 0.0, ghost=ghost), data, labels)
    assert (norms > clipNorm).any() and (norms < clipNorm).any()
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol, err_msg=name)


def test_ghost_and_materialised_clipping_agree():
    net = convNet()
    data, labels = batch()
    ghost = clippedGrads(net, DifferentialPrivacy(SGD(), 0.3, 0.0), data, labels)
    materialised = clippedGrads(net, DifferentialPrivacy(SGD(), 0.3, 0.0, ghost=False), data, labels)
    for name in ghost:
        np.testing.assert_allclose(ghost[name], materialised[name], rtol=1e-4, atol=1e-6, err_msg=name)


def trainOnce(optimizer, n=12):
    net = convNet()
    optimizer.setupOn(net)
    data, labels = batch(n)
    Trainer(net, CrossEntropy(), optimizer, batchsize=n).train(toDevice(data), toDevice(labels), random=False)
    return {name: toHost(var.data).copy() for name, var in net.getVariables().items()}


@pytest.mark.parametrize("expected, factor", [(None, 1.0), (24, 0.5)])
def test_noiseless_unclipped_step_is_the_ordinary_step_times_batch_over_expected(expected, factor):
    start = trainOnce(SGD(0.0))
    plain = trainOnce(SGD(0.1))
    private = trainOnce(DifferentialPrivacy(SGD(0.1), 1e6, 0.0, expectedBatchSize=expected))
    for name in plain:
        np.testing.assert_allclose(private[name] - start[name], factor * (plain[name] - start[name]),
                                   rtol=1e-4, atol=1e-7, err_msg=name)


def noiseAfterSteps(optimizer, updates):
    """The weight change of SGD(1) steps on zero gradients: the noise, divided as the wrapper divides it."""
    net = Sequential(Linear(100, 60))
    optimizer.setupOn(net)
    before = {name: toHost(var.data).copy() for name, var in net.getVariables().items()}
    for _ in range(updates):
        optimizer.zeroGradParams()
        optimizer.update()
    return np.concatenate([(toHost(var.data) - before[name]).ravel() for name, var in net.getVariables().items()])


def test_noise_has_standard_deviation_noise_multiplier_times_clip_norm_over_expected_batch():
    setSeed(11)
    noise = noiseAfterSteps(DifferentialPrivacy(SGD(1.0), 0.5, 2.0, expectedBatchSize=4), 1)
    want = 2.0 * 0.5 / 4  # 6060 draws: the sample std is within 2% with overwhelming probability
    assert abs(noise.std() / want - 1) < 0.04
    assert abs(noise.mean()) < 5 * want / np.sqrt(noise.size)
    setSeed(11)
    np.testing.assert_array_equal(noiseAfterSteps(DifferentialPrivacy(SGD(1.0), 0.5, 2.0, 4), 1), noise)


def test_noise_is_added_once_per_accumulated_step():
    setSeed(12)
    noise = noiseAfterSteps(GradientAccumulation(DifferentialPrivacy(SGD(1.0), 1.0, 1.0, expectedBatchSize=5), 2), 2)
    want = 1.0 / (5 * 2)  # once: not sqrt(2) times that
    assert abs(noise.std() / want - 1) < 0.04


def test_accumulated_noiseless_unclipped_steps_are_the_accumulated_ordinary_steps():
    start = trainOnce(SGD(0.0))
    plain = trainOnce(GradientAccumulation(SGD(0.1), 3), n=12)
    private = trainOnce(GradientAccumulation(DifferentialPrivacy(SGD(0.1), 1e6, 0.0), 3), n=12)
    for name in plain:
        np.testing.assert_allclose(private[name] - start[name], plain[name] - start[name], rtol=1e-4, atol=1e-7)


class Recorder(Handler):
    """Records the sample indices of every batch (the data is the indices)."""

    def __init__(self, batchsize):
        super().__init__(Sequential(Linear(1, 1)), batchsize=batchsize, poisson=True)
        self.batches = []

    def handleBatch(self, batch, idx, state):
        self.batches.append(toHost(batch[0]).ravel().astype(int))


def test_poisson_batches_have_the_expected_size_and_include_samples_independently():
    n, batchsize, calls = 2000, 100, 40
    recorder = Recorder(batchsize)
    for _ in range(calls):
        recorder.handle(toDevice(np.arange(n, dtype=np.float32).reshape(-1, 1)))
    q = recorder.sampleRate
    assert q == batchsize / n and len(recorder.batches) == calls * n // batchsize
    sizes = np.array([len(b) for b in recorder.batches])
    steps = len(sizes)
    assert abs(sizes.mean() - n * q) < 4 * np.sqrt(n * q * (1 - q) / steps)
    assert abs(sizes.var() / (n * q * (1 - q)) - 1) < 0.3  # binomial sizes: fixed batches would have none
    member = np.zeros((steps, n), dtype=bool)
    for k, b in enumerate(recorder.batches):
        assert len(np.unique(b)) == len(b)
        member[k, b] = True
    assert abs(member.mean() - q) < 4 * np.sqrt(q * (1 - q) / member.size)
    both = (member[:, :-1] & member[:, 1:]).mean()  # neighbours in together as often as independence says
    assert abs(both / q ** 2 - 1) < 0.15


def test_poisson_training_steps_on_empty_batches_with_noise_alone():
    setSeed(4)
    net = Sequential(Linear(4, 2))
    optimizer = DifferentialPrivacy(SGD(0.1), 1.0, 1.0).setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=1, poisson=True)
    sizes = []
    trainer.onBatchFinish = lambda handler: sizes.append(handler.state["size"])
    rng = np.random.default_rng(0)
    data, labels = rng.standard_normal((20, 4)).astype(np.float32), rng.integers(0, 2, 20)
    trainer.train(toDevice(data), toDevice(labels))
    assert 0 in sizes and optimizer.steps == len(sizes) == 20


def test_batchnorm_in_train_mode_is_refused_by_name_before_any_work():
    norm = BatchNorm1D(3)
    net = Sequential(Linear(4, 3), norm, Linear(3, 2))
    optimizer = DifferentialPrivacy(SGD(0.1), 1.0, 1.0).setupOn(net)
    before = {name: toHost(var.data).copy() for name, var in net.getVariables().items()}
    before["running mean"] = toHost(norm.mean).copy()
    rng = np.random.default_rng(0)
    data, labels = rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 2, 8)
    with pytest.raises(PerSampleError, match="BatchNorm1D.*GroupNorm"):
        Trainer(net, CrossEntropy(), optimizer, batchsize=4).train(toDevice(data), toDevice(labels))
    for name, var in net.getVariables().items():
        np.testing.assert_array_equal(toHost(var.data), before[name])
    np.testing.assert_array_equal(toHost(norm.mean), before["running mean"])  # no forward ran
    assert optimizer.steps == 0


def test_wrong_wrapping_order_mixed_precision_and_bad_hyperparameters_are_refused():
    with pytest.raises(ValueError, match="inside GradientAccumulation"):
        DifferentialPrivacy(GradientAccumulation(SGD(), 2), 1.0, 1.0)
    with pytest.raises(ValueError, match="precision"):
        DifferentialPrivacy(SGD(), 1.0, 1.0).setupOn(Sequential(Linear(2, 2)), precision="bfloat16")
    with pytest.raises(ValueError, match="clipNorm"):
        DifferentialPrivacy(SGD(), 0.0, 1.0)
    with pytest.raises(ValueError, match="noiseMultiplier"):
        DifferentialPrivacy(SGD(), 1.0, -1.0)


@pytest.mark.cuda
def test_private_poisson_training_makes_no_host_synchronisation_per_batch(hostWaits):
    rng = np.random.default_rng(0)
    data, labels = rng.standard_normal((400, 4)).astype(np.float32), rng.integers(0, 3, 400)
    net = Sequential(Linear(4, 8), Activation("relu"), Linear(8, 3))
    trainer = Trainer(net, CrossEntropy(), DifferentialPrivacy(SGD(0.1), 1.0, 1.0).setupOn(net), batchsize=20,
                      poisson=True)

    def syncs(samples):
        before = hostWaits()
        trainer.train(toDevice(data[:samples]), toDevice(labels[:samples]))
        return hostWaits() - before

    syncs(400)  # compiles the kernels
    assert syncs(100) == syncs(400)


def test_a_group_norm_cnn_learns_the_digits_privately():
    setSeed(0)
    images, labels = loadDigits()
    net = Sequential(Conv2D(1, 8, 3, pad=1), GroupNorm(2, 8), Activation("relu"), Flatten(), Linear(8 * 64, 10))
    cost = CrossEntropy()
    optimizer = DifferentialPrivacy(SGD(0.5), 1.0, 1.0).setupOn(net)
    trainer = Trainer(net, cost, optimizer, batchsize=64, poisson=True)
    errors = []
    for _ in range(4):
        trainer.trainFromHost(images, labels, macroBatchSize=1024)
        errors.append(cost.getError())
    assert errors[-1] < 0.6 * errors[0]
