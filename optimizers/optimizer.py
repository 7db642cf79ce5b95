"""Optimizer: the base of every update rule.

Sign convention: a cost returns d loss / d pred, the loss's own gradient, so after backward each
``Variable.grad`` holds d loss / d param; optimizers SUBTRACT a step along it.
"""
import contextlib

from ..engine.backend import isCuda, toDevice, toHost, xp
from ..engine.checks import checkHyper
from ..engine.dtype import precisionDtype
from ..engine.errors import DtypeError, ModelFileError, ShapeError
from ..engine.flatbuffer import FlatBuffer
from ..engine.parallel import runParallel, splitRanges
from .lossscaler import LossScaler
from .workingcopy import WorkingCopy


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

    Gradient hooks (``addHook``: clipping, weight decay) run in ``update`` before the step and
    change the gradients in place, in the order they were added. ``prepareStep()`` then does any
    per-step work over whole parameters (LARS's per-layer trust ratios) before the elementwise update.

    Learning-rate multipliers (``setLearnRateMultiplier``) scale the learning rate of chosen
    parameters, as a torch param group with lr scaled would. They are applied per segment, not per
    element: each flat buffer is cut into runs of consecutive parameters with the same multiplier,
    the fused update runs once per run with its own scalars (``stepScalars`` with learnRate scaled),
    and runs with multiplier 0 are skipped, so frozen weights stay bit-identical and their state
    untouched (unlike torch with lr=0, whose moments still move). Without multipliers there is one
    run per buffer and nothing changes; with them, a frozen backbone and a trained head cost two
    kernel launches instead of one, and no memory.

    ``scratchCount``: scratch arrays the NumPy update needs; with more than one, ``scratch`` is a
    (scratchCount, size) array whose rows are the scratch arrays.

    Mixed precision (``setupOn(module, precision="float16" | "bfloat16")``): the flat buffers keep the
    float32 master weights and gradients, and a WorkingCopy holds 16-bit weights and gradients that the
    module's Variables are rebound to, so forward and backward run in 16 bits. Each update unscales the
    16-bit gradients into the float32 ones (one fused pass per buffer), runs the hooks and the step on
    float32, and casts the new masters back into the 16-bit weights (one pass per buffer). float16 adds
    a LossScaler (``lossScaler``; a Trainer multiplies the loss gradient by ``lossScale()``): a step
    whose gradients overflowed is skipped on the device, weights and state untouched, by the gated
    copy of the update kernel (engine.kernels), without the host reading the flag. ``steps`` counts
    skipped steps too (the host never learns which were skipped), so Adam's bias correction after a
    skipped step is that of one step later than torch's, whose fused Adam does not count it.
    """

    scratchCount = 1

    def __init__(self, learnRate):
        self.learnRate = learnRate
        self.buffers = []
        self.slots = []
        self.bindings = []
        self.steps = 0
        self.gradientHooks = []
        self.multiplierRules = {}
        self.multipliers = {}
        self.segments = []
        self.runs = []
        self.runScales = []
        self.cpuParts = []
        self.precision = "float32"
        self.workingCopy = self.lossScaler = self.gate = None

    @property
    def learnRate(self):
        return self._learnRate

    @learnRate.setter
    def learnRate(self, value):
        self._learnRate = self.checkHyper("learnRate", value)

    checkHyper = checkHyper

    def setupOn(self, module, useGlobalState=True, precision="float32", lossScaler=None):
        """Take module's Variables (shared ones once) and create the optimizer state; with
        useGlobalState, rebind their data and grad to views of one flat buffer per dtype.

        precision: "float32" (the parameters' own dtype, whatever it is), or "float16" / "bfloat16" for
        mixed precision on a float32 module (see the class docstring); lossScaler: the LossScaler of
        float16 training (default LossScaler(), torch GradScaler's defaults)."""
        variables = module.getVariables()
        if not variables:
            raise ValueError(f"{type(self).__name__}.setupOn: {module.describe()} has no trainable parameters")
        for name, var in variables.items():
            self.checkVariable(name, var)
        workDtype = self.checkPrecision(module, variables, useGlobalState, precision, lossScaler)
        multipliers = self.resolveMultipliers(variables, self.multiplierRules)
        names = {id(var): name for name, var in variables.items()}
        if useGlobalState:
            groups = {}
            for var in variables.values():
                groups.setdefault(var.dtype, []).append(var)
            self.buffers = [FlatBuffer(group) for group in groups.values()]
            arrays = [(buf.data, buf.grad) for buf in self.buffers]
            self.segments = [[(names[id(var)], offset, offset + var.size) for var, offset in zip(buf.variables, buf.offsets)]
                             for buf in self.buffers]
        else:
            self.buffers = []
            arrays = [(var.data, var.grad) for var in variables.values()]
            self.segments = [[(name, 0, var.size)] for name, var in variables.items()]
        # Only the NumPy path needs scratch; the GPU kernels keep their temporaries in registers.
        self.slots = [(param, grad, self.initState(param), None if isCuda else self.newScratch(param))
                      for param, grad in arrays]
        self.precision = precision
        self.workingCopy = None if workDtype is None else WorkingCopy(self.buffers, module, workDtype)
        self.lossScaler = (lossScaler or LossScaler()) if precision == "float16" else None
        self.bindings = [(name, var, var.data, var.grad) for name, var in variables.items()]
        self.steps = 0
        self.multipliers = multipliers
        self.buildRuns()
        return self

    def checkPrecision(self, module, variables, useGlobalState, precision, lossScaler):
        """The 16-bit dtype of a mixed precision (None for "float32"), once the setup is known to allow it."""
        where = f"{type(self).__name__}.setupOn"
        dtype = precisionDtype(precision, where)
        if lossScaler is not None and (precision != "float16" or not isinstance(lossScaler, LossScaler)):
            raise ValueError(f"{where}: lossScaler must be a LossScaler, and is for precision='float16' only "
                             f"(got {type(lossScaler).__name__} with precision={precision!r})")
        if precision == "float32":
            return None
        if not useGlobalState:
            raise ValueError(f"{where}: precision={precision!r} keeps the float32 master weights in the flat "
                             "buffers of global state; use useGlobalState=True")
        others = sorted({str(var.dtype) for var in variables.values()} - {"float32"})
        if others:
            raise DtypeError(f"{where}: precision={precision!r} needs a float32 {module.describe()} (the master "
                             f"weights), but it has {', '.join(others)} parameters; build it in float32")
        return dtype

    def newScratch(self, param):
        shape = (param.size,) if self.scratchCount == 1 else (self.scratchCount, param.size)
        return xp.empty(shape, dtype=param.dtype)

    def setLearnRateMultiplier(self, target, value):
        """Scale the learning rate of some parameters by value (>= 0; 0 freezes them). target: a
        parameter name ('0.W'), a module path ('0', or '' for all: every parameter under it) or a
        Variable. Later calls win where targets overlap. Works before or after setupOn; returns self."""
        value = self.checkHyper("learnRate multiplier", value)
        rules = dict(self.multiplierRules)
        rules.pop(target, None)
        rules[target] = value
        if self.bindings:
            self.multipliers = self.resolveMultipliers({name: var for name, var, _, _ in self.bindings}, rules)
            self.buildRuns()
        self.multiplierRules = rules
        return self

    def resolveMultipliers(self, variables, rules):
        """name -> multiplier for the parameters a rule reaches (the others keep 1); a rule that
        reaches none raises KeyError naming it."""
        resolved = {}
        for target, value in rules.items():
            if isinstance(target, str):
                hits = [name for name in variables if not target or name == target or name.startswith(target + ".")]
            else:
                hits = [name for name, var in variables.items() if var is target]
            if not hits:
                raise KeyError(f"{type(self).__name__}: learnRate multiplier for {target!r} matches no parameter "
                               f"(parameters: {', '.join(variables)})")
            resolved.update(dict.fromkeys(hits, value))
        return resolved

    def buildRuns(self):
        """Cut every slot into runs of consecutive parameters with one multiplier (a gap after a
        parameter goes with it), drop the frozen ones, and split the runs into CPU parts."""
        self.runs = []
        for (param, grad, state, scratch), segments in zip(self.slots, self.segments):
            flat = (param.reshape(-1), grad.reshape(-1), tuple(s.reshape(-1) for s in state),
                    None if scratch is None else scratch)
            bounds = []
            for k, (name, start, _) in enumerate(segments):
                stop = segments[k + 1][1] if k + 1 < len(segments) else param.size
                scale = self.multipliers.get(name, 1.0)
                if bounds and bounds[-1][0] == scale:
                    bounds[-1][2] = stop
                else:
                    bounds.append([scale, start, stop])
            self.runs += [(scale, a, b, flat) for scale, a, b in bounds if scale != 0.0]
        self.runScales = [scale for scale, _, _, _ in self.runs]
        # On the CPU, each large run is updated in contiguous parts, one per core.
        self.cpuParts = [] if isCuda else [
            [self.view(flat, a + c, a + d) for c, d in splitRanges(b - a)] for _, a, b, flat in self.runs]

    @staticmethod
    def view(flat, a, b):
        param, grad, state, scratch = flat
        return param[a:b], grad[a:b], tuple(s[a:b] for s in state), None if scratch is None else scratch[..., a:b]

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
        step; the hook changes the gradients in place. A hook whose ``usesParams`` is true is called
        as hook(gradArrays(), paramArrays()). Returns self, so hooks can be chained."""
        self.gradientHooks.append(hook)
        return self

    def gradArrays(self):
        """The gradient arrays the update reads: one flat buffer per dtype with global state, every
        Variable's grad without it (gaps between views are zero, so norms over them are exact). Under
        mixed precision, the float32 master gradients, which prepareGrads fills."""
        return [grad for _, grad, _, _ in self.slots]

    def backwardGradArrays(self):
        """The gradient arrays backward writes: the 16-bit flat gradients under mixed precision (scaled
        by lossScale() with float16), else gradArrays()."""
        return self.gradArrays() if self.workingCopy is None else list(self.workingCopy.grad)

    def lossScale(self):
        """The 0-d device float32 to multiply the loss gradient by before backward (float16 mixed
        precision), or None."""
        return None if self.lossScaler is None else self.lossScaler.lossScale()

    @contextlib.contextmanager
    def masterWeights(self):
        """Under mixed precision, the module's Variables are the float32 master weights inside the block
        (to save the model, or evaluate it, in float32) and the 16-bit ones again after it; a no-op
        otherwise. Do not train inside the block."""
        if self.workingCopy is None:
            yield
            return
        self.workingCopy.unbind()
        try:
            yield
        finally:
            self.workingCopy.bind()

    def paramArrays(self):
        """The parameter arrays, in gradArrays' order (for hooks with ``usesParams``: weight decay)."""
        return [param for param, _, _, _ in self.slots]

    def zeroGradParams(self):
        """Clear the gradients of every parameter, lazily (Variable.zeroGrad): backward then writes
        each gradient instead of adding it to zeros."""
        for _, var, _, _ in self.bindings:
            var.zeroGrad()

    def update(self):
        """Apply one step to every parameter from its accumulated gradient."""
        self.applyUpdate(self.prepareGrads())

    def prepareGrads(self):
        """The first half of update: check the bindings and, under mixed precision, unscale the 16-bit
        gradients into the float32 ones. Returns the step's finite flag (a 0-d device bool) under loss
        scaling, else None. Between the halves gradArrays() may be changed in place (averaged over an
        accumulation group, summed over processes)."""
        if not self.slots:
            raise RuntimeError(f"{type(self).__name__}.update called before setupOn(module)")
        self.checkBindings()
        return None if self.workingCopy is None else self.workingCopy.unscale(self.lossScale())

    def applyUpdate(self, finite=None):
        """The second half of update: hooks, then the step (left out where finite is false), then,
        under mixed precision, the 16-bit weights refreshed and the loss scale adapted."""
        if self.gradientHooks:
            grads, params = self.gradArrays(), self.paramArrays()
            for hook in self.gradientHooks:
                hook(grads, params) if getattr(hook, "usesParams", False) else hook(grads)
        self.steps += 1
        if finite is None or isCuda or bool(finite):
            self.step(finite)
        if self.workingCopy is not None:
            self.workingCopy.refresh()
        if self.lossScaler is not None:
            self.lossScaler.update(finite)

    def step(self, gate):
        """The update of every run; on the GPU gated by the device flag gate (None: not gated)."""
        self.prepareStep()
        scalars = {scale: self.scaledScalars(scale) for scale in set(self.runScales)}
        if isCuda:
            self.gate = gate
            try:
                for scale, a, b, flat in self.runs:
                    param, grad, state, _ = self.view(flat, a, b)
                    self.updateGpu(param, grad, state, scalars[scale])
            finally:
                self.gate = None
        else:
            for scale, parts in zip(self.runScales, self.cpuParts):
                runParallel(self.updateCpu, [part + (scalars[scale],) for part in parts])

    def launch(self, kernel, *args):
        """Run a fused update kernel: its gated copy while the step is gated by a device flag."""
        if self.gate is None:
            kernel(*args)
        else:
            kernel.gated()(self.gate, *args)

    def scaledScalars(self, scale):
        """stepScalars() with the learning rate multiplied by scale, so everything the rate enters
        (AdamW's decay factor too) follows it, as in a torch param group with a scaled lr."""
        if scale == 1.0:
            return self.stepScalars()
        learnRate = self._learnRate
        self._learnRate = learnRate * scale
        try:
            return self.stepScalars()
        finally:
            self._learnRate = learnRate

    def prepareStep(self):
        """Per-step work over whole parameters between the hooks and the update; none by default."""

    def getState(self):
        """Host copies of what the next updates depend on: the step count, the learning rate, the
        learning-rate multipliers by parameter name and every state array (moments, velocities), by slot;
        under mixed precision also the precision, the float32 master weights by slot and the loss scaler's
        state, so a resumed run goes on from the exact masters, not from their 16-bit copies."""
        state = {"steps": self.steps, "learnRate": self.learnRate, "multipliers": dict(self.multipliers),
                 "slots": {str(i): {str(j): toHost(ary).copy() for j, ary in enumerate(state)}
                           for i, (_, _, state, _) in enumerate(self.slots)}}
        if self.workingCopy is not None:
            state["precision"] = self.precision
            state["master"] = {str(i): toHost(param).copy() for i, (param, _, _, _) in enumerate(self.slots)}
        if self.lossScaler is not None:
            state["lossScaler"] = self.lossScaler.getState()
        return state

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
        saved = state.get("precision", "float32")
        if saved != self.precision:
            raise ModelFileError(f"{type(self).__name__}.setState: the state was saved in {saved} precision, this "
                                 f"optimizer trains in {self.precision}; set it up with precision={saved!r}")
        master = state.get("master", {})
        if self.workingCopy is not None and (len(master) != len(self.slots) or any(
                master.get(str(i)) is None or master[str(i)].shape != param.shape
                for i, (param, _, _, _) in enumerate(self.slots))):
            raise ModelFileError(f"{type(self).__name__}.setState: the saved master weights do not fit this "
                                 "optimizer (another architecture)")
        if self.lossScaler is not None:
            self.lossScaler.checkState(state.get("lossScaler"))
        rules = {name: self.checkHyper("learnRate multiplier", value)
                 for name, value in state.get("multipliers", self.multipliers).items()}
        variables = {name: var for name, var, _, _ in self.bindings}
        if not set(rules) <= set(variables):
            raise ModelFileError(f"{type(self).__name__}.setState: learnRate multipliers for parameters this model "
                                 f"lacks: {sorted(set(rules) - set(variables))}")
        for ary, saved in pairs:
            ary[...] = toDevice(saved, ary.dtype)
        if self.workingCopy is not None:
            for i, (param, _, _, _) in enumerate(self.slots):
                param[...] = toDevice(master[str(i)], param.dtype)
            self.workingCopy.refresh()
        if self.lossScaler is not None:
            self.lossScaler.setState(state["lossScaler"])
        self.steps, self.learnRate = int(state["steps"]), state["learnRate"]
        self.multiplierRules, self.multipliers = rules, dict(rules)
        self.buildRuns()

    def initState(self, param):
        return ()

    def stepScalars(self):
        raise NotImplementedError

    def updateCpu(self, param, grad, state, scratch, scalars):
        raise NotImplementedError

    def updateGpu(self, param, grad, state, scalars):
        self.launch(self.kernel, grad, *scalars, param, *state)
