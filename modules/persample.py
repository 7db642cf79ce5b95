"""Per-sample gradients: the gradient of each sample's loss term for every parameter, or only each sample's
global gradient norm, from one forward and one backward pass (DP-SGD's clipping, data attribution,
gradient-noise statistics).

The pass is the ordinary one: the cost gives the gradient of every sample's own term (Cost.sampleGrad), and
backward runs through the network unchanged except that every module with parameters hands its output
gradient to its per-sample rule (``perSampleGrads`` or ``perSampleNormsSquared``, from what its forward and
backward kept) instead of accumulating its parameter gradients: ``Variable.grad`` is left as it was. Samples
never meet a Python loop: each rule is a few batched GEMMs or reductions over the batch, and nothing is read
back to the host. Everything is checked first (every module and the cost), so a refusal does no work.
"""
from functools import partial

from ..engine.backend import xp
from ..engine.dtype import statDtype
from ..engine.persample import rowNormsSquared
from .multimodule import flatArrays


def perSampleGradients(net, cost, data, target):
    """{name: (batch, *parameter.shape)} for every parameter of net (named as net.getVariables()), row i the
    gradient of sample i's loss term (see Cost.sampleGrad: the term, not the batch mean, so the rows sum to
    batch times the batch gradient). data and target: one batch, as net and cost take them (device arrays;
    targets prepared by cost.prepareTarget). The cost accumulates the batch's error as in training.
    PerSampleError, before any work, for a cost that is not samplewise, BatchNorm in train mode, or a module
    with parameters and no per-sample rule."""
    return sampleGradients(net, sampleOutputGrad(net, cost, data, target))


def sampleGradients(net, grad):
    """perSampleGradients from the per-sample output gradient grad of a forward pass already run (Cost.sampleGrad;
    after checkPerSample): for callers that use grad again (DifferentialPrivacy's reweighted backward)."""
    grads = {}  # id(Variable) -> its per-sample gradient: a Variable shared by several modules sums theirs

    def collect(mod, outGrad):
        addSampleGrads(grads, mod, mod.perSampleGrads(outGrad))

    backwardPerSample(net, grad, collect)
    batch = flatArrays(grad)[0].shape[0]
    return {name: grads[id(var)] if id(var) in grads else xp.zeros((batch,) + var.shape, dtype=var.dtype)
            for name, var in net.getVariables().items()}


def perSampleGradNorms(net, cost, data, target):
    """(batch,): each sample's gradient norm over all parameters of net together, the norm of the rows of
    perSampleGradients (same arguments, refusals and accumulated error), without forming per-sample gradients
    where a layer has a ghost norm (Linear, convolutions, RNN, Embedder; see engine/persample.py): the memory
    beyond the ordinary pass is one layer's work. A Variable that several modules share is the exception:
    its per-sample gradients are formed, as the norm of their sum needs them. In statDtype (float32 for
    16-bit models)."""
    return sampleGradNorms(net, sampleOutputGrad(net, cost, data, target))


def sampleGradNorms(net, grad):
    """perSampleGradNorms from the per-sample output gradient grad of a forward pass already run, as
    sampleGradients: the backward leaves the forward's state for a second, reweighted backward (ghost clipping)."""
    first = flatArrays(grad)[0]
    norms = xp.zeros((first.shape[0],), dtype=statDtype(first.dtype))
    shared, grads = sharedVariables(net), {}

    def collect(mod, outGrad):
        nonlocal norms
        if shared.isdisjoint(id(var) for var in mod.vars.values()):
            norms += mod.perSampleNormsSquared(outGrad)
        else:
            addSampleGrads(grads, mod, mod.perSampleGrads(outGrad))

    backwardPerSample(net, grad, collect)
    for rows in grads.values():
        norms += rowNormsSquared(rows)
    return xp.sqrt(norms)


def checkPerSample(net, cost):
    """Raise PerSampleError, naming the culprit, unless every module of net and the cost allow per-sample
    gradients."""
    cost.checkSamplewise()
    for _, mod in net.namedModules():
        mod.checkPerSample()


def sampleOutputGrad(net, cost, data, target):
    """After checkPerSample: the forward pass, and the gradient of each sample's loss term w.r.t. the output."""
    checkPerSample(net, cost)
    _, grad = cost.sampleGrad(net(data), target)
    return grad


def backwardPerSample(net, grad, visit):
    """net's backward from grad, with every module that has parameters calling visit(module, outputGrad) in
    place of accGradParams (an instance attribute shadowing the method for this pass only)."""
    owners = [mod for _, mod in net.namedModules() if mod.vars]
    for mod in owners:
        mod.accGradParams = partial(visit, mod)
    try:
        net.backward(grad, updGrad=False)
    finally:
        for mod in owners:
            del mod.accGradParams


def addSampleGrads(grads, mod, sampleGrads):
    """Add a module's {name: per-sample gradient} into grads, keyed by the identity of its Variables."""
    for name, rows in sampleGrads.items():
        key = id(mod.vars[name])
        grads[key] = rows if key not in grads else grads[key] + rows


def sharedVariables(net):
    """The ids of the Variables that more than one module of net holds."""
    seen, shared = set(), set()
    for _, mod in net.namedModules():
        for var in mod.vars.values():
            (shared if id(var) in seen else seen).add(id(var))
    return shared
