"""Optimizer: the base of every update rule.

Sign convention: a cost returns d loss / d pred, the loss's own gradient, so after backward each
``Variable.grad`` holds d loss / d param; optimizers SUBTRACT a step along it.
"""
import math

from ..engine.backend import isCuda, toDevice, toHost, xp
from ..engine.errors import DtypeError, ModelFileError, ShapeError
from ..engine.flatbuffer import FlatBuffer
from ..engine.parallel import runParallel, splitRanges


class Optimizer:
    """Updates the Variables of a module from their accumulated gradients.

    ``setupOn(module)`` takes the module's Variables. With global state (the default) the
    parameters of each dtype are packed into one FlatBuffer (``self.buffers``) and the optimizer
    state is flat arrays of the same size, so zeroGradParams is one fill per dtype and update one
    fused operation per dtype; without it, state is kept per Variable and updated in a loop, with
    the same math. ``learnRate`` may be changed between steps; the next update uses the new value.

    A subclass checks its hyperparameters in ``__init__`` (with ``checkHyper``) and implements:

    * ``initState(param)``: a tuple of zeroed state arrays shaped like param (moments, velocities);
    * ``stepScalars()``: a tuple of host floats for this step (``self.steps`` counts from 1),
      with anything that depends on the step (bias corrections) folded in on the host;
    * ``updateCpu(param, grad, state, scratch, scalars)``: the NumPy update, in place, using
      scratch (a preallocated array like param) instead of temporaries;
    * ``kernel``: a fused ElementwiseKernel taking (grad, *scalars) and updating (param, *state) in
      place, which the default ``updateGpu`` calls (override updateGpu for anything else).

    Both update methods work on one buffer at a time: a flat buffer with global state, one
    Variable's arrays without it.

    Gradient hooks (``addHook``: clipping, for instance) run in ``update`` before the step and
    change the gradients in place, in the order they were added.
    """

    def __init__(self, learnRate):
        self.learnRate = learnRate
        self.buffers = []
        self.slots = []
        self.bindings = []
        self.steps = 0
        self.gradientHooks = []

    @property
    def learnRate(self):
        return self._learnRate

    @learnRate.setter
    def learnRate(self, value):
        self._learnRate = self.checkHyper("learnRate", value)

    def checkHyper(self, name, value, low=0.0, high=math.inf, lowOpen=False):
        """Return value as a Python float (so NumPy math on float32 buffers stays float32), or
        raise ValueError unless low <= value < high (low < value when lowOpen)."""
        value = float(value)
        if not ((low < value if lowOpen else low <= value) and value < high):
            bounds = (f"{'>' if lowOpen else '>='} {low:g}" if high == math.inf
                      else f"in {'(' if lowOpen else '['}{low:g}, {high:g})")
            raise ValueError(f"{type(self).__name__}: {name} must be {bounds}, got {value}")
        return value

    def setupOn(self, module, useGlobalState=True):
        """Take module's Variables (shared ones once) and create the optimizer state; with
        useGlobalState, rebind their data and grad to views of one flat buffer per dtype."""
        variables = module.getVariables()
        if not variables:
            raise ValueError(f"{type(self).__name__}.setupOn: {module.describe()} has no trainable parameters")
        for name, var in variables.items():
            self.checkVariable(name, var)
        if useGlobalState:
            groups = {}
            for var in variables.values():
                groups.setdefault(var.dtype, []).append(var)
            self.buffers = [FlatBuffer(group) for group in groups.values()]
            arrays = [(buf.data, buf.grad) for buf in self.buffers]
        else:
            self.buffers = []
            arrays = [(var.data, var.grad) for var in variables.values()]
        # Only the NumPy path needs scratch; the GPU kernels keep their temporaries in registers.
        self.slots = [(param, grad, self.initState(param), None if isCuda else xp.empty_like(param))
                      for param, grad in arrays]
        # On the CPU, each large buffer is updated in contiguous parts, one per core.
        self.cpuParts = [] if isCuda else [
            [(param[a:b], grad[a:b], tuple(s[a:b] for s in state), scratch[a:b]) for a, b in splitRanges(param.size)]
            for param, grad, state, scratch in self.slots]
        self.bindings = [(name, var, var.data, var.grad) for name, var in variables.items()]
        self.steps = 0
        return self

    def checkVariable(self, name, var):
        where = f"{type(self).__name__}.setupOn: parameter {name!r}"
        if var.grad is None:
            raise ValueError(f"{where} has no gradient array")
        if var.grad.shape != var.data.shape:
            raise ShapeError(f"{where} has a gradient of shape {var.grad.shape} for data of shape {var.data.shape}")
        if var.grad.dtype != var.data.dtype:
            raise DtypeError(f"{where} has a {var.grad.dtype} gradient for {var.data.dtype} data")

    def checkBindings(self):
        """The update reaches parameters through the arrays taken at setup: a Variable whose data or
        grad was replaced since (module.cast, grad = None) would silently stop training. Reading
        var.grad also zero-fills the gradient of a parameter that got none since zeroGradParams."""
        for name, var, data, grad in self.bindings:
            if var.data is not data or var.grad is not grad:
                what = "gradient was removed" if var.grad is None else "data or grad was replaced"
                raise RuntimeError(f"{type(self).__name__}.update: the {what} of parameter {name!r} after setupOn; "
                                   "write into Variable arrays in place, or call setupOn again")

    def addHook(self, hook):
        """Call hook(gradArrays()) in every update, after the hooks added before it and before the
        step; the hook changes the gradients in place. Returns self, so hooks can be chained."""
        self.gradientHooks.append(hook)
        return self

    def gradArrays(self):
        """The gradient arrays the update reads: one flat buffer per dtype with global state, every
        Variable's grad without it (gaps between views are zero, so norms over them are exact)."""
        return [grad for _, grad, _, _ in self.slots]

    def zeroGradParams(self):
        """Clear the gradients of every parameter, lazily (Variable.zeroGrad): backward then writes
        each gradient instead of adding it to zeros."""
        for _, var, _, _ in self.bindings:
            var.zeroGrad()

    def update(self):
        """Apply one step to every parameter from its accumulated gradient."""
        if not self.slots:
            raise RuntimeError(f"{type(self).__name__}.update called before setupOn(module)")
        self.checkBindings()
        if self.gradientHooks:
            grads = self.gradArrays()
            for hook in self.gradientHooks:
                hook(grads)
        self.steps += 1
        scalars = self.stepScalars()
        if isCuda:
            for param, grad, state, _ in self.slots:
                self.updateGpu(param, grad, state, scalars)
        else:
            for parts in self.cpuParts:
                runParallel(self.updateCpu, [part + (scalars,) for part in parts])

    def getState(self):
        """Host copies of what the next updates depend on: the step count, the learning rate and
        every state array (moments, velocities), by slot."""
        return {"steps": self.steps, "learnRate": self.learnRate,
                "slots": {str(i): {str(j): toHost(ary).copy() for j, ary in enumerate(state)}
                          for i, (_, _, state, _) in enumerate(self.slots)}}

    def setState(self, state):
        """Restore getState() of an optimizer of this kind set up on the same architecture; every
        array is checked before any is written."""
        slots = state["slots"]
        pairs = [(ary, slots.get(str(i), {}).get(str(j))) for i, (_, _, arrays, _) in enumerate(self.slots)
                 for j, ary in enumerate(arrays)]
        counts = [len(slots.get(str(i), {})) == len(arrays) for i, (_, _, arrays, _) in enumerate(self.slots)]
        if len(slots) != len(self.slots) or not all(counts) or \
                any(saved is None or saved.shape != ary.shape for ary, saved in pairs):
            raise ModelFileError(f"{type(self).__name__}.setState: the saved state does not fit this optimizer "
                                 "(another optimizer or another architecture)")
        for ary, saved in pairs:
            ary[...] = toDevice(saved, ary.dtype)
        self.steps, self.learnRate = int(state["steps"]), state["learnRate"]

    def initState(self, param):
        return ()

    def stepScalars(self):
        raise NotImplementedError

    def updateCpu(self, param, grad, state, scratch, scalars):
        raise NotImplementedError

    def updateGpu(self, param, grad, state, scalars):
        self.kernel(grad, *scalars, param, *state)
