"""Module: the base of every layer and container.

A module does three things, each a method a subclass overrides:

* ``updateData(data)`` computes and returns the output, keeping what backward needs;
* ``updateGrad(grad)`` returns the gradient of the loss w.r.t. the input, given the gradient
  w.r.t. the output;
* ``accGradParams(grad)`` adds the parameter gradients into ``Variable.grad`` (always adds,
  in every module and container, so gradients of shared weights sum; the optimizer zeroes).

``__call__`` and ``backward`` wrap them with the checks and bookkeeping every module shares. A module with
parameters may also give each sample's parameter gradients (``perSampleGrads``, see modules/persample.py).
Containers override ``children`` and the data flow; everything that walks the tree
(variables, modes, casting, saving) lives here once.
"""
import json
import threading
from contextlib import contextmanager

import numpy

from ..engine import serialize
from ..engine.backend import checkOnDevice, toDevice, toHost
from ..engine.dtype import checkFloat, isBfloat16
from ..engine.errors import DtypeError, ModelFileError, PerSampleError, ShapeError
from ..engine.parallel import minPart, runParallel, splitRanges
from ..engine.persample import rowNormsSquared


_forwardState = threading.local()


@contextmanager
def withoutActivations():
    """Forward passes inside the block (in this thread) keep neither their inputs nor their outputs, as
    under PyTorch's no_grad: each layer's output is freed once the next layer has used it, so inference
    holds about two activations at a time instead of every layer's. No backward can follow such a pass."""
    _forwardState.released = getattr(_forwardState, "released", 0) + 1
    try:
        yield
    finally:
        _forwardState.released -= 1


def activationsReleased():
    """Whether this thread is inside withoutActivations (no backward can follow its forward passes)."""
    return getattr(_forwardState, "released", 0) > 0


class Module:
    """Base class of layers and containers. ``vars``: name -> Variable (trained);
    ``attrs``: name -> array (saved, not trained: running statistics)."""

    registry = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Module.registry[cls.__name__] = cls

    def __init__(self, name=None):
        self.name = name
        self.vars = {}
        self.attrs = {}
        self.train = True
        self.blueprintArgs = {}
        self.inData = None
        self.data = None
        self.grad = None  # containers that keep their input gradient (Graph, MultiModule) put it here

    def registerBlueprint(self, args):
        """Record the constructor's arguments (call with ``locals()``) so a saved file can rebuild this module."""
        self.blueprintArgs = {k: v for k, v in args.items() if k not in ("self", "__class__")}

    def describe(self):
        return f"{type(self).__name__} {self.name!r}" if self.name is not None else type(self).__name__

    # --- forward and backward -------------------------------------------------------------

    def __call__(self, data):
        checkOnDevice(data, self.describe())
        self.checkDataType(data.dtype)
        self.checkDataShape(data.shape)
        self.inData = data
        out = self.data = self.updateData(data)
        if activationsReleased():
            self.inData = self.data = None
        return out

    def fusedWith(self, after):
        """A function computing after(self(data)) in one step, for a container running the two in a row under
        withoutActivations (nothing kept for a backward pass); None when this module has none (the default)."""
        return None

    def backward(self, grad, updGrad=True, updParamGrads=True):
        """Propagate grad (d loss / d output). Returns d loss / d input, or None when updGrad is False
        (the first layer of a network never needs it). Parameter gradients are added when updParamGrads.
        The input gradient is not kept: held by every layer of a network until the next step, the
        gradients would add up to about the size of the saved activations again at the step's peak."""
        checkOnDevice(grad, f"{self.describe()} backward")
        if self.inData is None:
            raise RuntimeError(f"{self.describe()}: backward needs a forward pass first, one that kept its input "
                               "(not one under withoutActivations)")
        if self.data is not None and grad.shape != self.data.shape:
            raise ShapeError(f"{self.describe()}: gradient of shape {grad.shape} does not match "
                             f"the output of shape {self.data.shape}")
        inGrad = self.updateGrad(grad) if updGrad else None
        if updParamGrads and self.vars:
            self.accGradParams(grad)
        return inGrad

    def updateData(self, data):
        raise NotImplementedError

    def updateGrad(self, grad):
        raise NotImplementedError

    def accGradParams(self, grad):
        pass

    # --- CPU work split over the cores (engine.parallel) ---------------------------------------

    @staticmethod
    def batchRanges(lead):
        """Disjoint (start, stop) ranges of the samples of lead (batch, ...), one per CPU worker, each
        with at least engine.parallel.minPart elements (so small batches stay on one core); one range
        for a 0-d or empty lead."""
        n = lead.shape[0] if lead.ndim else 1
        if lead.ndim == 0 or n == 0:
            return [(0, n)]
        return splitRanges(n, minimum=-(-minPart // max(1, lead.size // n)))

    @classmethod
    def splitBatch(cls, fn, *arrays):
        """fn(*parts) for the parts of arrays (each (batch, ...), or a list of such) over the ranges of
        batchRanges, on the CPU cores: fn writes its parts in place. The first array sets the work per
        sample. NumPy's passes release the GIL, so this is how an unfused chain of them uses every core,
        as PyTorch's kernels do; each element gets the same operations whatever the split."""
        lead = arrays[0][0] if isinstance(arrays[0], list) else arrays[0]
        ranges = cls.batchRanges(lead)
        if len(ranges) == 1:
            fn(*arrays)
            return

        def part(a, b):
            fn(*([v[a:b] for v in ary] if isinstance(ary, list) else ary[a:b] for ary in arrays))

        runParallel(part, ranges)

    # --- per-sample gradients (driven by modules/persample.py) --------------------------------

    # perSampleGrads(grad), defined by a module whose parameters have per-sample gradients: called in place of
    # accGradParams with the same output gradient (row i from sample i's loss term alone), it returns
    # {name: (batch, *parameter.shape)}, each sample's gradient of each parameter, from what forward and
    # backward kept. None here: per-sample gradients refuse a module with parameters and no rule.
    perSampleGrads = None

    def checkPerSample(self):
        """Raise PerSampleError if per-sample gradients cannot pass this module; asked of every module before
        any work. A module that mixes samples overrides it (BatchNorm in train mode)."""
        if self.vars and self.perSampleGrads is None:
            raise PerSampleError(f"{self.describe()} has parameters ({', '.join(self.vars)}) but no per-sample "
                                 f"gradient rule: define its perSampleGrads (see modules/persample.py)")

    def perSampleNormsSquared(self, grad):
        """(batch,): each sample's squared gradient norm over this module's parameters, called as perSampleGrads.
        Here from perSampleGrads (one module's gradients at a time); layers override it with ghost norms that
        never form them."""
        return sum(rowNormsSquared(g) for g in self.perSampleGrads(grad).values())

    def checkDataShape(self, shape):
        """Raise ShapeError when an input of this shape cannot go through the module."""

    def checkDataType(self, dtype):
        """Inputs must be floats of the parameters' dtype; override for index inputs."""
        checkFloat(dtype, self.describe())
        own = self.dtype
        if own is not None and numpy.dtype(dtype) != own:
            raise DtypeError(f"{self.describe()}: input is {numpy.dtype(dtype)} but the parameters are {own}; "
                             f"convert the data or call module.cast({numpy.dtype(dtype).name})")

    def checkRank(self, shape, rank, layout):
        """Shared shape check: shape must have the given rank; layout names the axes for the message."""
        if len(shape) != rank:
            raise ShapeError(f"{self.describe()}: expected input of shape {layout}, got {tuple(shape)}")

    # --- the tree -------------------------------------------------------------------------

    def children(self):
        """Named submodules, in order (containers override)."""
        return {}

    def namedModules(self, prefix=""):
        yield prefix, self
        for name, child in self.children().items():
            yield from child.namedModules(f"{prefix}{name}.")

    def getVariables(self):
        """Ordered dict 'path.name' -> Variable over the whole tree; a shared Variable appears once."""
        out, seen = {}, set()
        for prefix, mod in self.namedModules():
            for name, var in mod.vars.items():
                if id(var) not in seen:
                    seen.add(id(var))
                    out[prefix + name] = var
        return out

    def getAttrs(self):
        """Ordered dict 'path.name' -> (module, name) of the non-trained saved arrays."""
        return {prefix + name: (mod, name) for prefix, mod in self.namedModules() for name in mod.attrs}

    @property
    def dtype(self):
        """The dtype of the parameters, or None for a module without any."""
        for var in self.getVariables().values():
            return var.dtype
        return None

    def paramCount(self):
        return sum(var.size for var in self.getVariables().values())

    def trainMode(self):
        for _, mod in self.namedModules():
            mod.train = True
        return self

    def evalMode(self):
        for _, mod in self.namedModules():
            mod.train = False
        return self

    @contextmanager
    def evaluating(self):
        """Every module in eval mode inside the block, and back to its own mode after it (even on error)."""
        modes = [(mod, mod.train) for _, mod in self.namedModules()]
        self.evalMode()
        try:
            yield
        finally:
            for mod, train in modes:
                mod.train = train

    def zeroGradParams(self):
        for var in self.getVariables().values():
            var.zeroGrad()

    def cast(self, dtype):
        """Convert parameters and saved arrays to dtype (before an optimizer is set up on them)."""
        checkFloat(dtype, self.describe())
        for var in self.getVariables().values():
            var.data, var.grad = var.data.astype(dtype), var.grad.astype(dtype)
        for _, mod in self.namedModules():
            mod.castAttrs(numpy.dtype(dtype))
        return self

    def castAttrs(self, dtype):
        """Convert this module's own saved arrays to dtype, for cast; a module whose statistics need
        more precision than its data (BatchNorm) overrides it."""
        for name, ary in self.attrs.items():
            self.attrs[name] = ary.astype(dtype)

    # --- files ----------------------------------------------------------------------------

    def getBlueprint(self):
        """Class name and constructor arguments, enough to rebuild the module without user code."""
        return {"class": type(self).__name__, "args": self.blueprintArgs}

    @classmethod
    def fromBlueprint(cls, blueprint):
        return cls(**blueprint["args"])

    def getState(self):
        """Host copies of every saved array: parameters under 'params/', statistics under 'attrs/'."""
        state = {"params/" + k: toHost(v.data) for k, v in self.getVariables().items()}
        state.update({"attrs/" + k: toHost(mod.attrs[n]) for k, (mod, n) in self.getAttrs().items()})
        return state

    def setState(self, state, source="state"):
        """Copy arrays into this module in place, after checking every name, shape and dtype kind
        first: a mismatch raises ModelFileError and nothing is changed."""
        own = self.getState()
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or extra:
            raise ModelFileError(f"{source} does not match {self.describe()}: missing {missing}, unexpected {extra}")
        for key, ary in own.items():
            if state[key].shape != ary.shape:
                raise ModelFileError(f"{source}: {key} has shape {state[key].shape}, the model expects {ary.shape}")
        for key, var in self.getVariables().items():
            var.data[...] = toDevice(state["params/" + key], var.dtype)
        for key, (mod, name) in self.getAttrs().items():
            mod.attrs[name][...] = toDevice(state["attrs/" + key], mod.attrs[name].dtype)

    def save(self, path, inputShape=None):
        """Write architecture and weights to an HDF5 file, atomically (write, fsync, rename); inputShape,
        the shape of one sample, is recorded for tools that run the model (summary). bfloat16 arrays are written
        as float32 (exactly): HDF5 has no bfloat16, and h5py would store opaque bytes that load cannot read."""
        with serialize.atomicH5(path) as f:
            f.attrs["format"] = "macrobatch-model-1"
            f.attrs["blueprint"] = json.dumps(self.getBlueprint())
            if inputShape is not None:
                f.attrs["inputShape"] = json.dumps([int(n) for n in inputShape])
            for key, ary in self.getState().items():
                f.create_dataset(key, data=ary.astype(numpy.float32) if isBfloat16(ary.dtype) else ary)

    def load(self, path):
        """Load weights saved by save() into this module; refuses (changing nothing) a file for another model."""
        with serialize.openH5(path) as f:
            state = {}
            f.visititems(lambda key, obj: state.__setitem__(key, obj[()]) if hasattr(obj, "shape") else None)
        self.setState(state, source=str(path))
        return self

    def __repr__(self):
        return self.describe()


def buildFromBlueprint(blueprint):
    """Instantiate the module tree a blueprint describes (weights freshly initialised)."""
    cls = Module.registry.get(blueprint.get("class"))
    if cls is None:
        raise ModelFileError(f"unknown module class {blueprint.get('class')!r} in blueprint")
    return cls.fromBlueprint(blueprint)


def savedInputShape(path):
    """The per-sample input shape recorded in a model file, or None."""
    with serialize.openH5(path) as f:
        return tuple(json.loads(f.attrs["inputShape"])) if "inputShape" in f.attrs else None


def loadModel(path):
    """Rebuild a module saved by Module.save from the file alone and load its weights."""
    with serialize.openH5(path) as f:
        if "blueprint" not in f.attrs:
            raise ModelFileError(f"{path}: not a macrobatch model file (no blueprint)")
        blueprint = json.loads(f.attrs["blueprint"])
    return buildFromBlueprint(blueprint).load(path)

