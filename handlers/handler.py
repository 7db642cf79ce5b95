"""Handler: the template that walks data in macrobatches and batches; subclasses handle one batch.

The data path, in order: ``handleFromHost`` -> contiguous macrobatch read on the host (the next one
in the background) -> upload of the whole macrobatch -> shuffle on the device -> batches
-> ``handleBatch``. ``handle`` starts at the shuffle, for data already on the device.
"""
import h5py
import numpy

from ..costs.multi import targetArrays
from ..engine.backend import isDeviceArray, xp
from ..engine.checks import checkPositiveInt
from ..engine.dtype import defaultDtype, hostCastable, isFloat
from ..engine.errors import DatasetError, DtypeError, NonFiniteError, ReadError, ShapeError
from ..engine.random import hostRng, permutation
from ..engine.transfer import Uploader, batchMemoryAdvice
from .hostreader import HostReader
from .macrobatchsize import autoMacroBatchSize


class Handler:
    """Base of Trainer, Validator and Calculator.

    mod: the Module to drive; onBatchFinish(handler): called after every batch; batchsize: samples per
    batch (the last batch of a macrobatch may be smaller: it is processed, not dropped).
    checkFinite: refuse floating data or targets holding NaN or Inf with NonFiniteError naming the
    samples, before any batch of them is used. Host data is checked once per macrobatch in the reader
    thread (one pass over the block, overlapped with the compute); device data once per call (on the
    GPU, one synchronisation per call). Pass False for data known to be clean, or where NaN is meant.

    target: one array, or for a model with several outputs (a Graph with several output nodes, trained
    with costs.Multi) a list of arrays, one per output, in the outputs' order: each is walked in step
    with the data (same samples, same shuffle) and handed on as a list.

    During a call the handler exposes ``currBatch`` / ``totalBatches`` (over the whole call) and
    ``currMacroBatch`` / ``totalMacroBatches``, and passes ``state`` (a dict with the same counters and
    the position of the batch in the data) to ``handleBatch``. ``onMacroBatchBegin(handler, index)``, when
    set, runs before each macrobatch is shuffled (Fit reseeds the random sources there).

    poisson: Poisson sampling instead of shuffled batches (DP-SGD's sampling, privacy/differentialprivacy.py).
    Each batch of a macrobatch holds every one of its samples independently with probability ``sampleRate``
    = batchsize / macroBatchSize (batchsize / samples for device data), so its size varies (batchsize on
    average, and batches may be empty); a macrobatch of m samples gives ceil(m / batchsize) batches, as
    without it. Drawn without reading the device: each batch's size is a binomial draw on the host (it does
    not depend on the data), its members the first ones of a device permutation, which together are that
    independent inclusion. What it guarantees: each step is the sampled Gaussian mechanism at rate
    sampleRate over the step's macrobatch (the partition into macrobatches fixed by position, not by the
    data), so an RDP accountant given sampleRate and the number of steps bounds the privacy loss (a sample
    takes part only in its own macrobatch's steps; counting the others is conservative). Shuffled fixed-size
    batches (the default) are not covered by that subsampling analysis: with them only the per-step Gaussian
    mechanism, with no amplification, is guaranteed.

    batchesPerStep: the batches that make one optimizer step (a Trainer sets it from its GradientAccumulation;
    1 otherwise). With poisson and k = batchesPerStep > 1, one logical batch is drawn per step, at
    ``sampleRate`` = k * batchsize / macroBatchSize, and cut into k consecutive pieces as even as possible, the
    physical batches (as Opacus's BatchMemoryManager does): each sample takes part at most once per step, and a
    macrobatch of m samples gives k * ceil(m / (k * batchsize)) batches, so no step straddles two macrobatches.
    Without poisson it changes nothing.
    """

    def __init__(self, mod, onBatchFinish=None, batchsize=128, checkFinite=True, poisson=False):
        self.mod = mod
        self.onBatchFinish = onBatchFinish
        self.batchsize = checkPositiveInt(batchsize, "batchsize")
        self.checkFinite = bool(checkFinite)
        self.poisson = bool(poisson)
        self.sampleRate = None  # of the last call's Poisson sampling: per logical batch
        self.batchesPerStep = 1
        self.currBatch = self.totalBatches = self.totalSamples = 0
        self.currMacroBatch = self.totalMacroBatches = 0
        self.state = {}
        self.gatherBuffers = {}
        self.onMacroBatchBegin = None
        self.autoMacroBatch = None  # (what it was worked out for, the size) of macroBatchSize="auto"
        self.macroBatchSize = None  # of the last host walk, resolved

    def handleBatch(self, batch, idx, state):
        """Process one batch: batch is [data, target] (target None when the call had none, a list of
        arrays when the call had a list)."""
        raise NotImplementedError

    # --- entry points ---------------------------------------------------------------------

    def handleFromHost(self, data, target=None, macroBatchSize=10000, onMacroBatchFinish=None, random=True, *,
                       startMacroBatch=0):
        """Walk host data (NumPy arrays or h5py Datasets, possibly larger than memory) in macrobatches of
        macroBatchSize contiguous samples, each uploaded to the device whole and cut into batches.
        macroBatchSize="auto" takes the largest that fits in free memory beside the model's work for one
        batch (handlers.macrobatchsize), and says what it chose.
        random shuffles the order of macrobatches and the samples inside each one; every sample is
        seen exactly once. startMacroBatch skips the first macrobatches of the walk's order (a resumed
        epoch): they are neither read nor handled, and the counters go on from where they end."""
        size = self.checkData(data, target, hostOnly=True)
        macroBatchSize = self.macroBatchSize = self.resolveMacroBatchSize(macroBatchSize, data, target)
        if macroBatchSize < self.batchsize:
            raise ValueError(f"macroBatchSize ({macroBatchSize}) must be at least batchsize ({self.batchsize})")
        spans = self.hostSpans(size, macroBatchSize)
        if random:
            spans = [spans[i] for i in hostRng().permutation(len(spans))]
        if not 0 <= startMacroBatch <= len(spans):
            raise ValueError(f"startMacroBatch must be in 0..{len(spans)}, got {startMacroBatch}")
        self.beginCall(spans)
        self.currBatch = sum(self.batchCount(start, stop) for start, stop in spans[:startMacroBatch])
        spans = spans[startMacroBatch:]
        arrays = [_HostSource(ary, name, spans, self.checkFinite, startMacroBatch,
                              self.indexCheck if name == "data" else None)
                  for name, ary in namedArrays(data, target)]
        uploader = Uploader(macroBatchSize)
        reader = HostReader(arrays, spans, lambda block, *targets: uploader.stage(
            *self.prepareHost(block, joinTargets(targets, target))))
        for i, (block, *targets) in enumerate(uploader.iterate(reader)):
            self.handleMacroBatch(startMacroBatch + i, spans[i][0], block, joinTargets(targets, target), random=random)
            if onMacroBatchFinish is not None:
                onMacroBatchFinish(self)

    def resolveMacroBatchSize(self, macroBatchSize, data, target):
        """macroBatchSize as a positive int; "auto" is worked out (handlers.macrobatchsize) on the first call
        and kept while the samples' shapes and dtypes stay the same."""
        if macroBatchSize != "auto":
            return checkPositiveInt(macroBatchSize, "macroBatchSize")
        key = (data.shape, data.dtype, self.batchsize) + tuple((t.shape, t.dtype) for t in targetArrays(target))
        if self.autoMacroBatch is None or self.autoMacroBatch[0] != key:
            self.autoMacroBatch = key, autoMacroBatchSize(self.mod, self.batchsize, self.dataDtype, data, target)
        return self.autoMacroBatch[1]

    def handle(self, data, target=None, random=True):
        """Walk device-resident data in batches (one macrobatch: the whole array)."""
        size = self.checkData(data, target, hostOnly=False)
        if self.checkFinite:
            for name, ary in namedArrays(data, target):
                checkFiniteBlock(ary, name, 0, f"the {size} samples of the call")
        if self.indexCheck is not None:
            self.indexCheck(data)
        self.beginCall([(0, size)])
        data, target = self.prepareDevice(data, target)
        self.handleMacroBatch(0, 0, data, target, random=random)

    # --- the walk -------------------------------------------------------------------------

    def hostSpans(self, size, macroBatchSize):
        """The (start, stop) sample ranges of the macrobatches of a host walk over size samples."""
        return spanRange(0, size, macroBatchSize)

    def beginCall(self, spans):
        self.totalMacroBatches = len(spans)
        self.totalBatches = sum(self.batchCount(start, stop) for start, stop in spans)
        self.totalSamples = sum(stop - start for start, stop in spans)
        largest = max(stop - start for start, stop in spans)
        self.sampleRate = min(1.0, self.batchesPerStep * self.batchsize / largest) if self.poisson else None
        self.currBatch = self.currMacroBatch = 0

    def batchCount(self, start, stop):
        """The batches of the macrobatch of samples start..stop-1: ceil(m / batchsize), or with poisson whole
        steps of batchesPerStep batches (see the class docstring)."""
        perStep = self.batchesPerStep if self.poisson else 1
        return perStep * -(-(stop - start) // (perStep * self.batchsize))

    def handleMacroBatch(self, index, offset, data, target=None, random=True):
        """Cut one device-resident macrobatch into batches, shuffled on the device when random (the
        targets, one array or a list of them, with the same permutation)."""
        self.currMacroBatch = index
        if self.onMacroBatchBegin is not None:
            self.onMacroBatchBegin(self, index)
        size = data.shape[0]
        with batchMemoryAdvice(self.batchsize, size):
            for start, stop, idx in self.batchIndices(size, random):
                if idx is None:
                    batch = [data[start:stop], eachTarget(target, lambda ary, key: ary[start:stop])]
                else:
                    batch = [self.gather(data, idx, "data"),
                             eachTarget(target, lambda ary, key: self.gather(ary, idx, key))]
                self.state = {"batch": self.currBatch, "totalBatches": self.totalBatches,
                              "macroBatch": index, "totalMacroBatches": self.totalMacroBatches,
                              "macroBatchOffset": offset, "macroBatchSize": size, "totalSamples": self.totalSamples,
                              "start": start, "size": stop - start}
                self.handleBatch(batch, self.currBatch, self.state)
                if self.onBatchFinish is not None:
                    self.onBatchFinish(self)
                self.currBatch += 1
        self.finishMacroBatch()

    def batchIndices(self, size, random):
        """(start, stop, idx) for each batch of a macrobatch of size samples: the batch is samples start..stop-1
        (idx None), or those of the device index array idx (stop - start of them). With poisson, the Poisson
        batches, batchesPerStep consecutive pieces of each logical batch (see the class docstring; random is then
        ignored: the sampling is random by nature)."""
        if self.poisson:
            perStep = self.batchesPerStep
            sizes = hostRng().binomial(size, self.sampleRate, self.batchCount(0, size) // perStep)
            for step, n in enumerate(sizes.tolist()):
                members = permutation(size)[:n]
                cuts = [n * j // perStep for j in range(perStep + 1)]
                for j in range(perStep):
                    start = (step * perStep + j) * self.batchsize
                    yield start, start + cuts[j + 1] - cuts[j], members[cuts[j]:cuts[j + 1]]
            return
        perm = permutation(size) if random else None
        for start in range(0, size, self.batchsize):
            stop = min(start + self.batchsize, size)
            yield start, stop, None if perm is None else perm[start:stop]

    def finishMacroBatch(self):
        """Hook run after the last batch of each macrobatch (before onMacroBatchFinish)."""

    def gather(self, ary, idx, key):
        """ary[idx] along the first axis into a buffer reused across batches of the same shape (grown for a
        Poisson batch larger than batchsize)."""
        shape = (max(self.batchsize, idx.shape[0]),) + ary.shape[1:]
        buf = self.gatherBuffers.get(key)
        if buf is None or buf.shape[0] < shape[0] or buf.shape[1:] != shape[1:] or buf.dtype != ary.dtype:
            buf = self.gatherBuffers[key] = xp.empty(shape, dtype=ary.dtype)
        return xp.take(ary, idx, axis=0, out=buf[:idx.shape[0]])

    # --- checks and conversion ------------------------------------------------------------

    def checkData(self, data, target, hostOnly):
        """Validate lengths and array kinds before anything runs; returns the number of samples."""
        what = "host data" if hostOnly else "device data"
        self.checkTargetCount(target)
        for name, ary in namedArrays(data, target):
            if not (hasattr(ary, "shape") and hasattr(ary, "__getitem__")):
                raise TypeError(f"{name}: expected an array or h5py Dataset, got {type(ary).__name__}")
            if not hostOnly and not isDeviceArray(ary):
                raise TypeError(f"{name}: expected a device array ({xp.__name__}.ndarray), got {type(ary).__name__}; "
                                "use the *FromHost method for host data or h5py Datasets")
            if len(ary.shape) == 0:
                raise ShapeError(f"{name}: expected an array of samples, got a scalar")
        size = data.shape[0]
        if size == 0:
            raise DatasetError(f"data: empty {what}, nothing to process")
        for name, ary in namedArrays(None, target):
            if ary.shape[0] != size:
                raise ShapeError(f"data has {size} samples but {name} has {ary.shape[0]}")
        want = self.dataDtype
        if not (data.dtype.kind in "iu" if want.kind in "iu" else hostCastable(data.dtype, want)):
            raise DtypeError(f"data: dtype {data.dtype} cannot be used as {want} input; give "
                             + ("integer indices" if want.kind in "iu" else "floating, integer or boolean data"))
        return size

    targetsTaken = None  # how many target arrays a call takes (targetCount of the cost); None: not checked

    def checkTargetCount(self, target):
        """ShapeError unless target is what the cost takes: one array, or a list of one per output."""
        taken = self.targetsTaken
        if taken is None or target is None:
            return
        given = len(target) if isinstance(target, (list, tuple)) else None
        if given == taken or (given is None and taken == 1):
            return
        what = "one target array" if taken == 1 else f"a list of {taken} target arrays, one per output"
        got = "one array" if given is None else f"a list of {given}"
        hint = ("; use costs.Multi, one cost per output, for a model with several outputs" if taken == 1
                else "")
        raise ShapeError(f"target: {type(self.cost).__name__} takes {what}, got {got}{hint}")

    @property
    def firstLayer(self):
        """The leaf module data meets first."""
        first = self.mod
        while first.children():
            first = next(iter(first.children().values()))
        return first

    @property
    def indexCheck(self):
        """The first layer's range check of index data, checkIndices(data, offset=0) (an Embedder's), or None."""
        return getattr(self.firstLayer, "checkIndices", None)

    @property
    def dataDtype(self):
        """The dtype data is uploaded in: the first layer's indexDtype when it takes indices (an Embedder),
        else the parameters' float dtype."""
        return numpy.dtype(getattr(self.firstLayer, "indexDtype", None) or self.mod.dtype or defaultDtype)

    def prepareTarget(self, target):
        """Validate and convert a block of targets (subclasses with a cost delegate to it)."""
        return target

    def prepareHost(self, data, target=None):
        """Runs in the reader thread on each macrobatch read from the host: checks the targets and
        returns the blocks (data, then each target) with the dtypes to upload them in (the Uploader
        converts the data)."""
        if target is None:
            return (data,), (self.dataDtype,)
        targets = targetArrays(self.prepareTarget(eachTarget(target, lambda ary, key: numpy.asarray(ary))))
        return (data, *targets), (self.dataDtype,) + (None,) * len(targets)

    def prepareDevice(self, data, target=None):
        data = data.astype(self.dataDtype, copy=False)
        return data, None if target is None else self.prepareTarget(target)


def namedArrays(data, target):
    """(name, array) of data (unless None) and of each target array, named for error messages."""
    named = [] if data is None else [("data", data)]
    if isinstance(target, (list, tuple)):
        return named + [(f"target[{i}]", ary) for i, ary in enumerate(target)]
    return named + ([] if target is None else [("target", target)])


def joinTargets(arrays, target):
    """Target arrays walked apart (a sequence) put back in the form of the call's target: None, one
    array, or a list."""
    if target is None:
        return None
    return list(arrays) if isinstance(target, (list, tuple)) else arrays[0]


def eachTarget(target, fn):
    """fn(array, key) applied to the one target array, or to each of a list (giving a list); key names
    the array for buffers kept across batches ("target", or ("target", i))."""
    if target is None:
        return None
    if isinstance(target, (list, tuple)):
        return [fn(ary, ("target", i)) for i, ary in enumerate(target)]
    return fn(target, "target")


def checkOutputs(pred, target):
    """pred, once its form is checked against target's: a list of outputs for a list of targets (as many),
    one array for one target array. Raises ShapeError, at the first batch, before any update."""
    many, given = isinstance(pred, (list, tuple)), isinstance(target, (list, tuple))
    if many == given and (not many or len(pred) == len(target)):
        return pred
    outputs = f"{len(pred)} outputs" if many else "one output"
    targets = f"a list of {len(target)} target arrays" if given else "one target array"
    raise ShapeError(f"the model returns {outputs}, but the call gave {targets}; give one target array per "
                     "output, with costs.Multi")


def spanRange(start, stop, step):
    """Consecutive (a, b) ranges of at most step samples covering start..stop."""
    return [(a, min(a + step, stop)) for a in range(start, stop, step)]


def checkFiniteBlock(ary, name, offset, where):
    """NonFiniteError naming the first sample of ary (a block starting at sample offset) that holds NaN or
    Inf; one pass over floating data, nothing for other dtypes (they cannot hold either)."""
    if not isFloat(ary.dtype):
        return
    mod = numpy if isinstance(ary, numpy.ndarray) else xp
    if bool(mod.isfinite(ary).all()):
        return
    rows = ~mod.isfinite(ary.reshape(ary.shape[0], -1)).all(axis=1)
    first = offset + int(rows.nonzero()[0][0])
    raise NonFiniteError(f"{name}: NaN or Inf in sample {first} ({where}), found before any of it was used; "
                         "clean the data, or pass checkFinite=False to the handler")


def describeSource(ary, name):
    """Where host data lives, for error messages: the dataset and its file for h5py, else its kind."""
    if isinstance(ary, h5py.Dataset):
        return f"dataset {ary.name} in {ary.file.filename}"
    return f"{name} ({type(ary).__name__})"


class _HostSource:
    """One host array as the HostReader reads it, span by span: a failed read (a corrupt or truncated
    HDF5 file) raises ReadError naming the samples, the dataset and its file, and with checkFinite each
    floating block read is checked for NaN and Inf, in the reader thread, before the walk reaches it.
    indexCheck(block, offset), when given, checks the indices of each block there too (an Embedder's
    range check: on the host, so the device never has to report a bad index back)."""

    def __init__(self, ary, name, spans, checkFinite, firstIndex, indexCheck=None):
        self.ary, self.name, self.checkFinite, self.indexCheck = ary, name, checkFinite, indexCheck
        self.shape = ary.shape
        self.order = {start: firstIndex + i for i, (start, _) in enumerate(spans)}
        self.total = firstIndex + len(spans)

    def __getitem__(self, span):
        start, stop = span.start, span.stop
        try:
            block = self.ary[span]
        except OSError as e:
            raise ReadError(f"reading samples {start}..{stop - 1} of {describeSource(self.ary, self.name)}: {e}") from e
        if self.checkFinite:
            checkFiniteBlock(block, self.name, start, f"samples {start}..{stop - 1}, macrobatch "
                                                      f"{self.order[start]} of {self.total}")
        if self.indexCheck is not None:
            self.indexCheck(numpy.asarray(block), start)
        return block
