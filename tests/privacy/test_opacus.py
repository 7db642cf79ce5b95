"""Against Opacus 1.6 itself (a dev-only dependency: skipped where it is not installed): the RDP accountant
equals Opacus's RDPAccountant and get_noise_multiplier on a grid of settings, and one noiseless DP-SGD step
through a Trainer equals Opacus's PrivacyEngine step (hooks and ghost clipping) on the same weights and
batch, per-sample gradient norms included. Opacus runs on the host in torch; our side moves its inputs in
with toDevice and its results out with toHost, so each test means the same on both backends."""
import itertools

import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.handlers import Trainer
from macrobatch.modules import Activation, Conv2D, Flatten, GroupNorm, Linear, MaxPool2D, Sequential
from macrobatch.modules.persample import perSampleGradNorms
from macrobatch.optimizers import SGD
from macrobatch.privacy.accountant import ORDERS, RdpAccountant, epsilon, noiseMultiplierFor
from macrobatch.privacy.differentialprivacy import DifferentialPrivacy
from macrobatch.privacy.sampledgaussian import sampledGaussianRdp

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")
from opacus import PrivacyEngine  # noqa: E402  (after the skip: Opacus is optional)
from opacus.accountants import RDPAccountant  # noqa: E402
from opacus.accountants.analysis import rdp as rdpAnalysis  # noqa: E402
from opacus.accountants.utils import get_noise_multiplier  # noqa: E402

# Notes that are not failures: Opacus's on its insecure default RNG and on a best order at the end of the orders
# (the grid reaches both ends), torch's on hooks of a model whose input needs no gradient.
pytestmark = [pytest.mark.filterwarnings("ignore:Secure RNG turned off"),
              pytest.mark.filterwarnings("ignore:Full backward hook is firing"),
              pytest.mark.filterwarnings("ignore:Optimal order is the")]

RATES = [1e-4, 1e-3, 4e-3, 0.01, 0.1, 0.5, 0.99, 1.0]
NOISES = [0.3, 0.5, 0.8, 1.0, 1.1, 2.0, 5.0, 20.0]


def test_default_orders_are_opacus_default_alphas():
    assert list(ORDERS) == RDPAccountant.DEFAULT_ALPHAS


@pytest.mark.parametrize("q", RATES)
@pytest.mark.parametrize("sigma", NOISES)
def test_rdp_of_one_step_equals_opacus_compute_rdp(q, sigma):
    """Equal to 1e-9 relative, or 1e-12 absolute where the RDP is tiny (small rates, large noise, orders near
    1): there the fractional series sums O(1) terms of alternating sign to ~1e-11 and both computations keep
    only ~1e-14 of it; against a 50-digit integration (mpmath) ours is the closer one (at q = 1e-4, sigma = 20,
    order 1.1: 3e-5 relative against Opacus's 1.3e-3, from scipy's log_ndtr against math.erfc)."""
    want = rdpAnalysis.compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=RDPAccountant.DEFAULT_ALPHAS)
    np.testing.assert_allclose(sampledGaussianRdp(q, sigma, ORDERS), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("q", RATES)
def test_epsilon_equals_opacus_rdp_accountant(q):
    """Every noise, steps and delta of the grid: equal to 1e-8 relative (the worst seen is 6e-10, at 1e5
    steps, where the per-step RDP's last digits above are multiplied by the steps). Each side computes a
    step's RDP once: ours an RdpAccountant stepped on to each count, Opacus's RDPAccountant.get_privacy_spent
    written out on its compute_rdp."""
    for sigma in NOISES:
        rdp = np.array(rdpAnalysis.compute_rdp(q=q, noise_multiplier=sigma, steps=1,
                                               orders=RDPAccountant.DEFAULT_ALPHAS))
        accountant = RdpAccountant()
        for steps in [1, 10, 1000, 100000]:
            accountant.step(sigma, q, count=steps - accountant.steps)
            for delta in [1e-8, 1e-5, 0.1]:
                want, _ = rdpAnalysis.get_privacy_spent(orders=RDPAccountant.DEFAULT_ALPHAS, rdp=steps * rdp,
                                                        delta=delta)
                assert accountant.epsilon(delta) == pytest.approx(want, rel=1e-8), (sigma, steps, delta)
        assert epsilon(steps, q, sigma, delta) == pytest.approx(want, rel=1e-8), sigma


def test_accountant_of_changing_steps_equals_opacus_step_by_step():
    ours, theirs = RdpAccountant(), RDPAccountant()
    for sigma, q, count in [(1.1, 0.01, 5), (0.8, 0.02, 3), (1.1, 0.01, 2), (2.0, 0.5, 1)]:
        ours.step(sigma, q, count=count)
        for _ in range(count):
            theirs.step(noise_multiplier=sigma, sample_rate=q)
    assert ours.epsilon(1e-5) == pytest.approx(theirs.get_epsilon(delta=1e-5), rel=1e-10)


@pytest.mark.parametrize("target, steps, q, delta", [
    (t, s, q, d) for t, s, q, d in itertools.product([0.5, 3.0, 20.0], [10, 1000, 20000], [0.001, 0.1],
                                                     [1e-5, 1e-7])])
def test_noise_multiplier_equals_opacus_get_noise_multiplier(target, steps, q, delta):
    """The same bisection on equal epsilons: the same float, or both refuse an unreachable target."""
    try:
        want = get_noise_multiplier(target_epsilon=target, target_delta=delta, sample_rate=q, steps=steps,
                                    accountant="rdp")
    except ValueError:
        with pytest.raises(ValueError, match="out of reach"):
            noiseMultiplierFor(target, steps, q, delta)
        return
    assert noiseMultiplierFor(target, steps, q, delta) == want


# --- one DP-SGD step against Opacus's ---------------------------------------------------------------------

# A network is a layer list built in both frameworks, as bench/models.py does: an MLP, and a small CNN with
# GroupNorm (Opacus's answer to BatchNorm) and a max pool.
NETS = {
    "mlp": ((20,), (("linear", 20, 16), ("relu",), ("linear", 16, 5))),
    "cnn": ((2, 8, 8), (("conv", 2, 4), ("groupnorm", 2, 4), ("relu",), ("maxpool",), ("flatten",),
                        ("linear", 64, 5))),
}
BATCH = 12


def buildBoth(key):
    """Our network (seeded init) and its torch twin with our weights copied in (Linear W transposed)."""
    makers = {"linear": (Linear, torch.nn.Linear),
              "conv": (lambda i, o: Conv2D(i, o, 3, pad=1), lambda i, o: torch.nn.Conv2d(i, o, 3, padding=1)),
              "groupnorm": (GroupNorm, torch.nn.GroupNorm), "relu": (lambda: Activation("relu"), torch.nn.ReLU),
              "maxpool": (lambda: MaxPool2D(2), lambda: torch.nn.MaxPool2d(2)),
              "flatten": (Flatten, torch.nn.Flatten)}
    setSeed(7)
    ours = Sequential(*(makers[kind][0](*args) for kind, *args in NETS[key][1]))
    theirs = torch.nn.Sequential(*(makers[kind][1](*args) for kind, *args in NETS[key][1]))
    names = {"W": "weight", "b": "bias", "scale": "weight"}
    for mod, tmod in zip(ours.modules, theirs):
        for name, var in mod.vars.items():
            ary = toHost(var.data)
            with torch.no_grad():
                getattr(tmod, names.get(name, name)).copy_(torch.from_numpy(np.ascontiguousarray(
                    ary.T if isinstance(mod, Linear) and name == "W" else ary)))
    return ours, theirs


def hostBatch(key):
    rng = np.random.default_rng(4)
    return rng.standard_normal((BATCH,) + NETS[key][0]).astype(np.float32), rng.integers(0, 5, BATCH)


def ourNorms(net, data, labels):
    cost = CrossEntropy()
    return toHost(perSampleGradNorms(net, cost, toDevice(data), cost.prepareTarget(toDevice(labels))))


def ourStep(net, data, labels, clipNorm, ghost, learnRate=0.5):
    """Weights (torch's layout, host) after one noiseless DP-SGD step of a Trainer on the whole batch."""
    optimizer = DifferentialPrivacy(SGD(learnRate), clipNorm, 0.0, ghost=ghost).setupOn(net)
    Trainer(net, CrossEntropy(), optimizer, batchsize=BATCH).train(toDevice(data), toDevice(labels.astype(np.int32)),
                                                                  random=False)
    return [toHost(var.data).T if isinstance(mod, Linear) and name == "W" else toHost(var.data)
            for mod in net.modules for name, var in mod.vars.items()]


def opacusStep(net, data, labels, clipNorm, mode, learnRate=0.5):
    """(weights, per-sample norms) of one noiseless step of Opacus's PrivacyEngine in grad_sample_mode mode
    ("hooks": per-sample gradients; "ghost": ghost clipping, two backwards) on the batch, in order."""
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(data),
                                                                        torch.from_numpy(labels)),
                                         batch_size=BATCH)
    made = PrivacyEngine().make_private(module=net, optimizer=torch.optim.SGD(net.parameters(), lr=learnRate),
                                        data_loader=loader, noise_multiplier=0.0, max_grad_norm=clipNorm,
                                        poisson_sampling=False, grad_sample_mode=mode,
                                        criterion=torch.nn.CrossEntropyLoss())
    model, optimizer, batches = made[0], made[1], made[-1]
    criterion = made[2] if mode == "ghost" else torch.nn.CrossEntropyLoss()
    (x, y), = list(batches)
    optimizer.zero_grad()
    criterion(model(x), y).backward()
    if mode == "ghost":
        norms = model.per_sample_gradient_norms
    else:
        norms = torch.stack([p.grad_sample.reshape(BATCH, -1).norm(dim=1) for p in net.parameters()]).norm(dim=0)
    norms = norms.detach().numpy().copy()
    optimizer.step()
    return [p.detach().numpy().copy() for p in net.parameters()], norms


@pytest.mark.parametrize("key", sorted(NETS))
@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_per_sample_gradient_norms_equal_opacus(key, mode):
    ours, theirs = buildBoth(key)
    data, labels = hostBatch(key)
    _, want = opacusStep(theirs, data, labels, clipNorm=1.0, mode=mode)
    np.testing.assert_allclose(ourNorms(ours, data, labels), want, rtol=1e-4)


@pytest.mark.parametrize("key", sorted(NETS))
@pytest.mark.parametrize("ghost, mode", [(True, "ghost"), (True, "hooks"), (False, "hooks")])
def test_noiseless_dp_sgd_step_equals_opacus(key, ghost, mode):
    """Clip norm at the median norm, so half the samples are clipped: the weights after one step are equal
    within float32 tolerance. (Opacus divides by norm + 1e-6, we by the norm: 1e-6 relative at norms ~1.)"""
    ours, theirs = buildBoth(key)
    data, labels = hostBatch(key)
    clipNorm = float(np.median(ourNorms(ours, data, labels)))
    before = [p.detach().numpy().copy() for p in theirs.parameters()]
    want, norms = opacusStep(theirs, data, labels, clipNorm, mode)
    assert (norms > clipNorm * 1.01).any() and (norms < clipNorm * 0.99).any()
    got = ourStep(ours, data, labels, clipNorm, ghost)
    for old, mine, theirsNow in zip(before, got, want):
        assert np.abs(theirsNow - old).max() > 1e-3  # the step moved every parameter
        np.testing.assert_allclose(mine, theirsNow, rtol=1e-4, atol=1e-6)

