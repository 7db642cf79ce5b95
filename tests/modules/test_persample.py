"""Per-sample gradients (modules/persample.py): every supported module and composite networks against
torch.func.vmap(torch.func.grad(...)) on the same weights and data; the rows sum to batch times the batch
gradient; ghost norms equal the norms of the materialised gradients; refusals come before any work."""
import numpy as np
import pytest

from macrobatch.costs import BCE, L1, MSE, CrossEntropy, Hinge, KLDivergence, Multi, SmoothL1
from macrobatch.costs.cost import Cost
from macrobatch.engine.backend import toDevice, toHost
from macrobatch.engine.errors import PerSampleError
from macrobatch.engine.persample import outerSumNormsSquared, outerSums
from macrobatch.modules import (RNN, Activation, BatchNorm1D, BatchNorm2D, Concat, Conv1D, Conv2D, Conv3D,
                                Deconv1D, Deconv2D, Deconv3D, Embedder, Flatten, Graph, GroupNorm,
                                InstanceNorm2D, LayerNorm, Linear, Module, Node, Parallel, PRelu, Sequential)
from macrobatch.modules.persample import perSampleGradients, perSampleGradNorms


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# --- torch twins: the function each module computes, from a dict of its parameters (named as getVariables) ---

def torchForward(torch, mod, names):
    """f(params, x): what mod computes, in torch.nn.functional, reading each parameter from params under its
    name in names (id(Variable) -> the root's getVariables() name, so a shared Variable is one tensor) and
    running statistics from mod."""
    F = torch.nn.functional

    def weight(params, key):
        return params[names[id(mod.vars[key])]]

    def bias(params):
        return weight(params, "b") if "b" in mod.vars else None

    if isinstance(mod, Sequential):
        steps = [torchForward(torch, child, names) for child in mod.modules]

        def sequential(params, x):
            for step in steps:
                x = step(params, x)
            return x
        return sequential
    if isinstance(mod, Graph):
        steps = [(node, torchForward(torch, node.module, names)) for node in mod.steps]

        def graph(params, x):
            values = dict(zip(mod.inputs, x if mod.listInput else [x]))
            for node, step in steps:
                args = [values[p] if i is None else values[p][i] for p, i in node.parents]
                values[node] = step(params, args[0] if len(args) == 1 else args)
            outputs = [values[n] if i is None else values[n][i] for n, i in mod.outputs]
            return outputs if mod.listOutput else outputs[0]
        return graph
    if isinstance(mod, Concat):
        return lambda params, xs: torch.cat(xs, dim=mod.axis)
    if isinstance(mod, Flatten):
        return lambda params, x: x.flatten(1)
    if isinstance(mod, Activation):
        return lambda params, x: getattr(torch, mod.blueprintArgs["activation"])(x)
    if isinstance(mod, Linear):
        return lambda params, x: x @ weight(params, "W") + (0 if bias(params) is None else bias(params))
    if isinstance(mod, (Deconv1D, Deconv2D, Deconv3D)):
        conv = getattr(F, f"conv_transpose{mod.nd}d")
        return lambda params, x: conv(x, weight(params, "W"), bias(params), mod.stride, mod.pad, mod.outPad,
                                      mod.groups, mod.dilation)
    if isinstance(mod, (Conv1D, Conv2D, Conv3D)):
        conv = getattr(F, f"conv{mod.nd}d")
        return lambda params, x: conv(x, weight(params, "W"), bias(params), mod.stride, mod.pad, mod.dilation,
                                      mod.groups)
    if isinstance(mod, Embedder):
        return lambda params, x: F.embedding(x, weight(params, "W"), padding_idx=mod.paddingIndex)
    if isinstance(mod, GroupNorm):
        return lambda params, x: F.group_norm(x, mod.numGroups, weight(params, "scale"), weight(params, "bias"),
                                              mod.epsilon)
    if isinstance(mod, LayerNorm):
        return lambda params, x: F.layer_norm(x, mod.normalizedShape, weight(params, "scale"),
                                              weight(params, "bias"), mod.epsilon)
    if isinstance(mod, PRelu):
        return lambda params, x: F.prelu(x, weight(params, "slopes"))
    if isinstance(mod, (BatchNorm1D, BatchNorm2D)):
        stats = [torch.from_numpy(toHost(mod.attrs[k])) for k in ("mean", "var")]
        return lambda params, x: F.batch_norm(x, *stats, weight(params, "scale"), weight(params, "bias"),
                                              False, 0.0, mod.epsilon)
    if isinstance(mod, RNN):
        return lambda params, x: torchRnn(torch, mod, lambda key: weight(params, key), x)
    raise AssertionError(f"no torch twin for {mod.describe()}")


def torchRnn(torch, mod, weight, x):
    """torch's LSTM / GRU / RNN (batch_first, zero states) written out step by step: torch.func.vmap has no
    batching rule for the fused GRU kernel."""
    H, T = mod.hsize, x.shape[1]
    for k in range(mod.layers):
        outputs = []
        for d in range(mod.directions):
            W = {key: weight(mod.paramName(key, k, d)) for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            h = c = x.new_zeros(x.shape[0], H)
            states = [None] * T
            for t in (range(T - 1, -1, -1) if d else range(T)):
                gi, gh = x[:, t] @ W["weight_ih"].T + W["bias_ih"], h @ W["weight_hh"].T + W["bias_hh"]
                if mod.mode == "lstm":
                    i, f, g, o = (gi + gh).chunk(4, dim=1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                elif mod.mode == "gru":
                    (ir, iz, inn), (hr, hz, hn) = gi.chunk(3, dim=1), gh.chunk(3, dim=1)
                    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
                    n = torch.tanh(inn + r * hn)
                    h = (1 - z) * n + z * h
                else:
                    h = getattr(torch, mod.mode)(gi + gh)
                states[t] = h
            outputs.append(torch.stack(states, dim=1))
        x = torch.cat(outputs, dim=2)
    if mod.getSequences:
        return x
    return torch.cat((x[:, -1, :H], x[:, 0, H:]), dim=1) if mod.directions == 2 else x[:, -1]


def torchLoss(torch, cost, batchTargets):
    """f(out, y): sample's loss term of cost for one sample (out and y with a batch axis of 1), as
    Cost.sampleGrad defines it; batchTargets (host) give CrossEntropy's batch weight sum."""
    F = torch.nn.functional
    if isinstance(cost, Multi):
        parts = [torchLoss(torch, c, t) for c, t in zip(cost.costs, batchTargets)]
        return lambda outs, ys: sum(w * f(o, y) for w, f, o, y in zip(cost.weights, parts, outs, ys))
    if isinstance(cost, MSE):
        return F.mse_loss
    assert isinstance(cost, CrossEntropy)
    if not cost.weighted:
        return lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    weights = torch.from_numpy(cost.weights.astype(np.float32))
    kept = batchTargets != cost.ignoreIndex
    total = float(cost.weights[np.where(kept, batchTargets, 0)][kept].sum())
    batch = batchTargets.shape[0]
    return lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), weight=weights,
                                          ignore_index=cost.ignoreIndex, reduction="sum") * (batch / total)


def torchPerSample(torch, mod, cost, x, y):
    """torch.func.vmap(torch.func.grad(loss of one sample)) over the batch, on mod's weights: {name: array}."""
    from torch.func import grad, vmap
    params = {k: torch.from_numpy(toHost(v.data)) for k, v in mod.getVariables().items()}
    names = {id(var): key for key, var in mod.getVariables().items()}
    forward, loss = torchForward(torch, mod, names), torchLoss(torch, cost, y)

    def tensors(a):
        return [torch.from_numpy(part) for part in a] if isinstance(a, list) else torch.from_numpy(a)

    def batchOfOne(t):
        return [part.unsqueeze(0) for part in t] if isinstance(t, list) else t.unsqueeze(0)

    def sampleLoss(params, xi, yi):
        return loss(forward(params, batchOfOne(xi)), batchOfOne(yi))

    grads = vmap(grad(sampleLoss), in_dims=(None, 0, 0))(params, tensors(x), tensors(y))
    return {k: v.numpy() for k, v in grads.items()}


# --- the cases: every supported module, a few geometries each -----------------------------------------------

def affine(mod, seed=3):
    """mod with non-trivial parameters where they start at 1 and 0 (norm layers, PRelu)."""
    rng = np.random.default_rng(seed)
    for var in mod.vars.values():
        var.data[...] = toDevice(rng.uniform(0.5, 1.5, var.shape), var.dtype)
    return mod


def evalBatchNorm(mod, shape):
    """mod in eval mode with running statistics moved by three train steps, and random scale and bias."""
    rng = np.random.default_rng(7)
    for _ in range(3):
        mod(toDevice(rng.normal(2.0, 3.0, shape).astype(np.float32)))
    return affine(mod).evalMode()


def floats(*shape):
    return lambda rng: rng.standard_normal(shape).astype(np.float32)


def indices(vocabulary, *shape):
    """Indices with repeats within each sample (the ghost norm's same-row terms), padding rows among them."""
    return lambda rng: rng.integers(0, vocabulary, shape).astype(np.int32) % (vocabulary - 2)


# id -> (module factory, input factory, cost factory); "-gram" and "-full" name the branch a layer's ghost norm takes
# (Gram matrices or materialised gradients); Linear and Embedder on (batch,) take Gram, RNN cases mix both
CASES = {
    "linear": (lambda: Linear(7, 3), floats(5, 7), CrossEntropy),
    "linear-nobias": (lambda: Linear(7, 3, useBias=False), floats(5, 7), MSE),
    "conv1d-groups": (lambda: Conv1D(4, 6, 3, stride=2, pad=1, groups=2), floats(5, 4, 9), MSE),
    "conv2d-gram": (lambda: Conv2D(3, 4, 3), floats(5, 3, 5, 5), MSE),  # 9 positions: Gram matrices
    "conv2d-full": (lambda: Conv2D(3, 4, 3, pad=1, dilation=2), floats(5, 3, 8, 8), MSE),  # 36: materialised
    "conv3d-groups": (lambda: Conv3D(2, 4, 2, groups=2, useBias=False), floats(4, 2, 3, 3, 3), MSE),
    "deconv1d-groups": (lambda: Deconv1D(4, 6, 3, stride=2, groups=2, outPad=1), floats(5, 4, 5), MSE),
    "deconv2d-gram": (lambda: Deconv2D(3, 4, 3, stride=2), floats(5, 3, 2, 2), MSE),
    "deconv2d-full": (lambda: Deconv2D(3, 4, 3, stride=2, pad=1, dilation=2), floats(5, 3, 4, 4), MSE),
    "deconv3d": (lambda: Deconv3D(2, 2, 2, stride=2), floats(3, 2, 2, 2, 2), MSE),
    "embedder": (lambda: Embedder(7, 5), indices(7, 6), CrossEntropy),
    "embedder-sequences-gram": (lambda: Embedder(9, 5, paddingIndex=2), indices(9, 5, 6), CrossEntropy),
    "embedder-sequences-full": (lambda: Embedder(5, 3, paddingIndex=0), indices(5, 5, 8), CrossEntropy),
    "layernorm-sequences": (lambda: affine(LayerNorm(4)), floats(5, 3, 4), MSE),
    "layernorm-2d": (lambda: affine(LayerNorm((3, 4))), floats(5, 3, 4), MSE),
    "groupnorm": (lambda: affine(GroupNorm(2, 4)), floats(5, 4, 3, 3), MSE),
    "instancenorm2d": (lambda: affine(InstanceNorm2D(3, affine=True)), floats(5, 3, 4, 4), MSE),
    "prelu": (lambda: affine(PRelu(4)), floats(5, 4, 3), MSE),
    "prelu-shared": (lambda: affine(PRelu(4, sharedAlpha=True)), floats(5, 4, 3, 2), MSE),
    "batchnorm1d-eval": (lambda: evalBatchNorm(BatchNorm1D(6), (8, 6)), floats(5, 6), CrossEntropy),
    "batchnorm2d-eval": (lambda: evalBatchNorm(BatchNorm2D(3), (8, 3, 4, 4)), floats(5, 3, 4, 4), MSE),
    **{f"rnn-{mode}": (lambda mode=mode: RNN(3, 4, mode=mode), floats(5, 6, 3), CrossEntropy)
       for mode in ("lstm", "gru", "relu", "tanh")},
    **{f"rnn-{mode}-bi-stacked-sequences": (lambda mode=mode: RNN(3, 4, layers=2, mode=mode, direction="bi",
                                                                  getSequences=True), floats(4, 5, 3), MSE)
       for mode in ("lstm", "gru", "relu", "tanh")},
    "rnn-tanh-long-full": (lambda: RNN(2, 3, mode="tanh"), floats(4, 12, 2), CrossEntropy),  # 144 > 3 * 2
}


def targetsFor(cost, out, rng):
    """Host targets for cost and the host output out (or a list of them, for Multi)."""
    if isinstance(cost, Multi):
        return [targetsFor(c, o, rng) for c, o in zip(cost.costs, out)]
    if isinstance(cost, CrossEntropy):
        return rng.integers(0, out.shape[-1], out.shape[:-1]).astype(np.int32)
    return rng.standard_normal(out.shape).astype(np.float32)


def deviceTargets(cost, y):
    return cost.prepareTarget([toDevice(a) for a in y] if isinstance(y, list) else toDevice(y))


def setUp(case, seed=0):
    """(module, cost, host input, host targets) of a case."""
    makeModule, makeInput, makeCost = CASES[case]
    rng = np.random.default_rng(seed)
    mod, cost, x = makeModule(), makeCost(), makeInput(rng)
    out = mod(toDevice(x))
    return mod, cost, x, targetsFor(cost, [toHost(o) for o in out] if isinstance(out, list) else toHost(out), rng)


def hostGrads(grads):
    return {k: toHost(v) for k, v in grads.items()}


def materialisedNorms(grads):
    return np.sqrt(sum((g.reshape(g.shape[0], -1).astype(np.float64) ** 2).sum(axis=1) for g in grads.values()))


def assertMatchesTorch(torch, mod, cost, x, y):
    """perSampleGradients equal torch's vmap(grad) for every parameter, and the shapes are (batch, *shape)."""
    ours = hostGrads(perSampleGradients(mod, cost, toDevice(x), deviceTargets(cost, y)))
    ref = torchPerSample(torch, mod, cost, x, y)
    batch = (x[0] if isinstance(x, list) else x).shape[0]
    assert ours.keys() == ref.keys() == mod.getVariables().keys()
    for name, var in mod.getVariables().items():
        assert ours[name].shape == (batch,) + var.shape, name
        scale = np.abs(ref[name]).max()
        np.testing.assert_allclose(ours[name], ref[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def assertSumIsBatchTimesBatchGradient(mod, cost, x, y):
    batch = (x[0] if isinstance(x, list) else x).shape[0]
    rows = hostGrads(perSampleGradients(mod, cost, toDevice(x), deviceTargets(cost, y)))
    mod.zeroGradParams()
    _, grad = cost(mod(toDevice(x)), deviceTargets(cost, y))
    mod.backward(grad)
    for name, var in mod.getVariables().items():
        expected = batch * toHost(var.grad)
        np.testing.assert_allclose(rows[name].sum(axis=0), expected, rtol=1e-4,
                                   atol=1e-5 * np.abs(expected).max(), err_msg=name)


def assertGhostNormsEqualMaterialised(mod, cost, x, y):
    norms = toHost(perSampleGradNorms(mod, cost, toDevice(x), deviceTargets(cost, y)))
    full = materialisedNorms(hostGrads(perSampleGradients(mod, cost, toDevice(x), deviceTargets(cost, y))))
    assert norms.shape == full.shape
    np.testing.assert_allclose(norms, full, rtol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_per_sample_gradients_match_torch_vmap_grad(torch, case):
    assertMatchesTorch(torch, *setUp(case))


@pytest.mark.parametrize("case", list(CASES))
def test_per_sample_gradients_sum_to_batch_times_the_batch_gradient(case):
    assertSumIsBatchTimesBatchGradient(*setUp(case))


@pytest.mark.parametrize("case", list(CASES))
def test_ghost_norms_equal_the_norms_of_the_materialised_gradients(case):
    assertGhostNormsEqualMaterialised(*setUp(case))


# --- composite networks ------------------------------------------------------------------------------------

def inceptionNet():
    """Convolutions, GroupNorm, PRelu, a shared-input Parallel, Concat, Flatten and Linear layers."""
    return Sequential(Conv2D(2, 4, 3, pad=1), affine(GroupNorm(2, 4)), affine(PRelu(4)),
                      Parallel(Conv2D(4, 3, 1), Conv2D(4, 3, 3, pad=1, groups=1), shared=True), Concat(1),
                      Activation("tanh"), Flatten(), Linear(6 * 5 * 5, 8), affine(LayerNorm(8)), Linear(8, 4))


def sharedWeightNet():
    """Two Linear layers holding one Variable: its per-sample gradient is the sum of theirs."""
    first, second = Linear(6, 6), Linear(6, 6)
    second.vars["W"] = first.vars["W"]
    return Sequential(first, Activation("tanh"), second, Activation("tanh"), Linear(6, 3))


def twoHeadGraph():
    """A Graph with an RNN body and two outputs, scored by a Multi cost (cross-entropy and squared error)."""
    x = Node()
    body = Node(RNN(3, 4, mode="gru"), x)
    return Graph(x, [Node(Linear(4, 5), body), Node(Linear(4, 2), body)])


COMPOSITES = {
    "inception": (inceptionNet, floats(5, 2, 5, 5), CrossEntropy),
    "shared-weights": (sharedWeightNet, floats(5, 6), lambda: CrossEntropy(weights=[1.0, 2.0, 0.5], ignoreIndex=1)),
    "two-heads": (twoHeadGraph, floats(5, 4, 3), lambda: Multi(CrossEntropy(), MSE(), weights=[1.0, 0.5])),
}
CASES.update(COMPOSITES)


@pytest.mark.parametrize("case", list(COMPOSITES))
def test_composite_networks_match_torch_vmap_grad_and_the_batch_gradient(torch, case):
    mod, cost, x, y = setUp(case)
    assertMatchesTorch(torch, mod, cost, x, y)
    assertSumIsBatchTimesBatchGradient(mod, cost, x, y)
    assertGhostNormsEqualMaterialised(mod, cost, x, y)


@pytest.mark.parametrize("case", ["inception", "embedder-sequences-gram", "rnn-gru-bi-stacked-sequences"])
def test_float16_per_sample_gradients_and_norms_agree_with_float32(case):
    """A float16 model gives the float32 model's per-sample gradients and norms within float16's precision
    (normwise), its gradients in float16 and its norms in float32."""
    mod, cost, x, y = setUp(case)
    half = setUp(case)[0].cast(np.float16)
    half.setState(mod.getState())
    data = x.astype(np.float16) if x.dtype == np.float32 else x
    grads16 = perSampleGradients(half, cost, toDevice(data), deviceTargets(cost, y))
    norms16 = perSampleGradNorms(half, cost, toDevice(data), deviceTargets(cost, y))
    grads = hostGrads(perSampleGradients(mod, cost, toDevice(x), deviceTargets(cost, y)))
    assert {g.dtype for g in grads16.values()} == {np.dtype(np.float16)} and norms16.dtype == np.float32
    for name, ref in grads.items():
        err = np.abs(toHost(grads16[name]).astype(np.float32) - ref).max()
        assert err <= 1e-2 * np.abs(ref).max(), name
    np.testing.assert_allclose(toHost(norms16), materialisedNorms(grads), rtol=1e-2)


def test_weighted_cross_entropy_terms_are_the_rows_over_the_batch_mean_row_weight():
    """A sample's term with class weights and ignoreIndex: its rows' weighted losses times batch / weight sum,
    so an all-ignored sample has a zero gradient and the terms average to the batch loss."""
    cost = CrossEntropy(weights=[1.0, 3.0, 0.5], ignoreIndex=-100)
    logits = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    labels = np.array([[0, 1], [-100, -100], [2, 1], [1, 0]], dtype=np.int32)
    _, rows = cost.sampleGrad(toDevice(logits), cost.prepareTarget(toDevice(labels)))
    _, batch = CrossEntropy(weights=[1.0, 3.0, 0.5], ignoreIndex=-100)(toDevice(logits), toDevice(labels))
    rows = toHost(rows)
    np.testing.assert_array_equal(rows[1], 0)
    np.testing.assert_allclose(rows, 4 * toHost(batch), rtol=1e-6)


@pytest.mark.parametrize("cost, target", [
    (MSE(), "floats"), (L1(), "floats"), (SmoothL1(0.5), "floats"), (BCE(), "probabilities"),
    (KLDivergence(), "probabilities"), (CrossEntropy(), "labels"), (CrossEntropy(labelSmoothing=0.1), "labels"),
    (Hinge(), "labels")], ids=lambda v: type(v).__name__ if isinstance(v, Cost) else v)
def test_a_samples_term_is_the_cost_of_that_sample_alone(cost, target):
    """For every unweighted cost, row i of sampleGrad is the cost's gradient on a batch of sample i alone."""
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((4, 3, 5)).astype(np.float32)
    if target == "labels":
        y = rng.integers(0, 5, (4, 3)).astype(np.int32)
    else:
        y = (rng.uniform(0, 1, pred.shape) if target == "probabilities" else rng.standard_normal(pred.shape))
        y = y.astype(np.float32)
    _, rows = cost.sampleGrad(toDevice(pred), cost.prepareTarget(toDevice(y)))
    rows = toHost(rows)
    for i in range(4):
        _, alone = cost(toDevice(pred[i:i + 1]), cost.prepareTarget(toDevice(y[i:i + 1])))
        np.testing.assert_allclose(rows[i:i + 1], toHost(alone), rtol=1e-5, atol=1e-7)


# --- refusals, before any work -----------------------------------------------------------------------------

class Scaled(Module):
    """A module with a parameter and no per-sample rule."""

    def __init__(self):
        super().__init__("scaled")
        from macrobatch.engine.variable import Variable
        self.vars["k"] = Variable(toDevice(np.ones(1, dtype=np.float32)))

    def updateData(self, data):
        return data * self.vars["k"].data

    def updateGrad(self, grad):
        return grad * self.vars["k"].data


class Contrastive(MSE):
    """A cost that does not say its loss is a mean of per-sample terms."""

    samplewise = False


def untouched(net, run):
    """run() raises PerSampleError and leaves net's gradients, running statistics and outputs as they were."""
    for var in net.getVariables().values():
        var.grad[...] = 7
    before = net.getState()
    net.data = None
    with pytest.raises(PerSampleError) as info:
        run()
    assert net.data is None, "the forward pass ran"
    for key, ary in net.getState().items():
        np.testing.assert_array_equal(ary, before[key], err_msg=key)
    for var in net.getVariables().values():
        assert (toHost(var.grad) == 7).all()
    return str(info.value)


@pytest.mark.parametrize("function", [perSampleGradients, perSampleGradNorms])
def test_train_mode_batchnorm_is_refused_by_name_suggesting_groupnorm(function):
    net = Sequential(Conv2D(2, 3, 3), BatchNorm2D(3, name="bn"), Flatten(), Linear(3 * 4, 2))
    x, cost = toDevice(np.ones((4, 2, 4, 4), np.float32)), CrossEntropy()
    message = untouched(net, lambda: function(net, cost, x, cost.prepareTarget(toDevice(np.zeros(4, np.int32)))))
    assert "BatchNorm2D 'bn'" in message and "train mode" in message and "GroupNorm" in message


@pytest.mark.parametrize("function", [perSampleGradients, perSampleGradNorms])
def test_a_module_with_parameters_and_no_rule_is_refused_by_name(function):
    net = Sequential(Linear(3, 3), Scaled())
    x, cost = toDevice(np.ones((4, 3), np.float32)), MSE()
    message = untouched(net, lambda: function(net, cost, x, toDevice(np.zeros((4, 3), np.float32))))
    assert "Scaled 'scaled'" in message and "perSampleGrads" in message


@pytest.mark.parametrize("cost", [Contrastive(), Multi(MSE(), Contrastive())], ids=["cost", "inside-multi"])
def test_a_cost_that_is_not_samplewise_is_refused_by_name(cost):
    net = Linear(3, 3)
    y = toDevice(np.zeros((4, 3), np.float32))
    message = untouched(net, lambda: perSampleGradients(net, cost, toDevice(np.ones((4, 3), np.float32)),
                                                        [y, y] if isinstance(cost, Multi) else y))
    assert "Contrastive" in message and "samplewise" in message
    assert ("cost 1 of Multi" in message) == isinstance(cost, Multi)


def test_parameter_free_modules_and_eval_batchnorm_pass_and_gradients_are_left_alone():
    """Per-sample work never touches Variable.grad, and modules without parameters need no rule."""
    net = Sequential(Linear(4, 6), Activation("relu"), evalBatchNorm(BatchNorm1D(6), (8, 6)), Linear(6, 2))
    net.zeroGradParams()
    before = {k: toHost(v.grad).copy() for k, v in net.getVariables().items()}
    x, y = np.ones((3, 4), np.float32), np.zeros((3, 2), np.float32)
    perSampleGradients(net, MSE(), toDevice(x), toDevice(y))
    perSampleGradNorms(net, MSE(), toDevice(x), toDevice(y))
    for k, v in net.getVariables().items():
        np.testing.assert_array_equal(toHost(v.grad), before[k])


def test_a_parameter_no_output_depends_on_has_zero_rows():
    x = Node()
    used, unused = Linear(3, 2, name="used"), Linear(3, 2, name="unused")
    net = Graph(x, [Node(used, x), Node(unused, x)])
    data = toDevice(np.ones((4, 3), np.float32))
    y = toDevice(np.zeros((4, 2), np.float32))
    grads = hostGrads(perSampleGradients(net, Multi(MSE(), MSE(), weights=[1.0, 0.0]), data, [y, y]))
    assert grads["unused.W"].shape == (4, 3, 2)
    assert np.abs(grads["used.W"]).max() > 0 and np.abs(grads["unused.W"]).max() == 0


# --- the batched products ----------------------------------------------------------------------------------

@pytest.mark.parametrize("positions", [2, 40], ids=["gram", "materialised"])
def test_outer_sum_norms_equal_the_norms_of_the_outer_sums(positions):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 2, positions, 4)), rng.standard_normal((3, 2, positions, 5))
    sums = toHost(outerSums(toDevice(a), toDevice(b)))
    np.testing.assert_allclose(sums, np.einsum("bgpm,bgpn->bgmn", a, b), rtol=1e-12)
    np.testing.assert_allclose(toHost(outerSumNormsSquared(toDevice(a), toDevice(b))),
                               (sums ** 2).sum(axis=(1, 2, 3)), rtol=1e-12)


def test_per_sample_norms_read_nothing_back_from_the_device(hostWaits):
    mod, cost, x, y = setUp("inception")
    data, target = toDevice(x), deviceTargets(cost, y)
    perSampleGradNorms(mod, cost, data, target)  # compile the kernels and fill the buffers first
    before = hostWaits()
    perSampleGradNorms(mod, cost, data, target)
    perSampleGradients(mod, cost, data, target)
    assert hostWaits() == before
