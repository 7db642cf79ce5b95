"""One network with its cost and Adam, in each framework, behind the same three calls.

``train(x, y)`` runs one training step (forward, cross-entropy, backward, Adam update) per batch of
x; ``infer(x)`` computes the outputs of x batch by batch in eval mode and brings them to the host;
``sync()`` waits for queued device work. The arrays come from ``makeData`` and live where the framework
computes. macrobatch runs through its handlers, the path users take: ``Trainer.train`` (random=False,
so both frameworks see the same batches in the same order) and ``Calculator.calc``.
"""
import numpy

from macrobatch.costs import CrossEntropy
from macrobatch.engine import backend, setSeed, toDevice
from macrobatch.handlers import Calculator, Trainer
from macrobatch.optimizers import Adam

from models import buildOurs, buildTorch, copyWeights

batchsize = 128  # the default; the small-batch rows pass their own
learnRate = 1e-3
classes = 10


def hostData(spec, samples, seed):
    """Float32 normal inputs and int64 labels on the host, drawn without float64 temporaries."""
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((samples,) + spec.inshape, dtype=numpy.float32)
    return x, rng.integers(0, classes, size=samples, dtype=numpy.int64)


class OursWorkload:
    """macrobatch: the network of spec (seeded init), CrossEntropy, Adam on one flat buffer, trained in
    precision ("float32", or "float16" / "bfloat16" mixed precision: float32 master weights in Adam), in
    batches of batch samples."""

    name = "macrobatch"

    def __init__(self, spec, seed, withOptimizer=True, precision="float32", batch=batchsize):
        setSeed(seed)
        self.batch = batch
        self.net = buildOurs(spec)
        self.cost = CrossEntropy()
        self.optimizer = Adam(learnRate=learnRate)
        self.precision = precision
        if withOptimizer:
            self.setupOptimizer()
        self.calculator = Calculator(self.net, batchsize=self.batch)

    def setupOptimizer(self):
        self.optimizer.setupOn(self.net, precision=self.precision)
        self.trainer = Trainer(self.net, self.cost, self.optimizer, batchsize=self.batch)

    def makeData(self, x, y):
        """Device copies of host x and y, x in the dtype the network computes in (16-bit under mixed
        precision, as trainFromHost uploads it)."""
        return toDevice(x.astype(self.net.dtype, copy=False)), toDevice(y.astype(numpy.int32))

    def train(self, x, y):
        """Train on every batch of x; returns the mean loss over them (a host float)."""
        self.trainer.train(x, y, random=False)
        return self.cost.getError()

    def infer(self, x):
        return self.calculator.calc(x)

    @staticmethod
    def sync():
        backend.synchronize()


class TorchWorkload:
    """PyTorch: the same network with our initial weights copied in, F.cross_entropy, torch.optim.Adam
    with its defaults (on the CPU that is the single-tensor loop torch picks by default). autocast: None
    (float32), or the torch dtype of automatic mixed precision (torch.autocast over forward and loss,
    with a GradScaler for float16), in batches of batch samples."""

    name = "torch"

    def __init__(self, spec, seed, device, weightsFrom=None, withOptimizer=True, autocast=None, batch=batchsize):
        import torch
        self.batch = batch
        torch.manual_seed(seed)
        self.torch, self.device = torch, torch.device(device)
        self.autocast = autocast
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=autocast == torch.float16)
        self.net = buildTorch(spec)
        if weightsFrom is not None:
            copyWeights(weightsFrom, self.net)
        self.net.to(self.device)
        if withOptimizer:
            self.setupOptimizer()

    def setupOptimizer(self):
        self.optimizer = self.torch.optim.Adam(self.net.parameters(), lr=learnRate)

    def makeData(self, x, y):
        return (self.torch.from_numpy(x).to(self.device), self.torch.from_numpy(y).to(self.device))

    def train(self, x, y):
        """Train on every batch of x; returns the mean loss over them (a host float)."""
        functional = self.torch.nn.functional
        self.net.train()
        total = self.torch.zeros((), device=self.device)
        for start in range(0, x.shape[0], self.batch):
            xb, yb = x[start:start + self.batch], y[start:start + self.batch]
            self.optimizer.zero_grad()
            with self.torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
                loss = functional.cross_entropy(self.net(xb), yb)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.detach() * xb.shape[0]
        return total.item() / x.shape[0]

    def infer(self, x):
        self.net.eval()
        with self.torch.no_grad():
            out = self.torch.empty((x.shape[0], classes), device=self.device)
            for start in range(0, x.shape[0], self.batch):
                out[start:start + self.batch] = self.net(x[start:start + self.batch])
        return out.cpu().numpy()

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


def crossEntropy(logits, labels):
    """Mean cross-entropy of host logits against labels, in float64 (the check's reference)."""
    logits = numpy.asarray(logits, dtype=numpy.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logProbs = shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))
    return float(-logProbs[numpy.arange(labels.shape[0]), labels].mean())


def peakMemory(framework, key, seed, device, threads, steps):
    """Run in a fresh child process: peak RSS growth (bytes) of framework ('macrobatch' or 'torch') on
    model key, after imports and data creation: first building the network and running inference on
    steps batches, then (peak so far, so it includes inference) setting up Adam and training on them.
    On a GPU also the peak device memory reserved by the framework's caching allocator."""
    from measure import PeakRss
    from models import specs
    spec = specs[key]
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
    xh, yh = hostData(spec, steps * batchsize, seed)
    devicePeak = _devicePeak(framework) if device == "cuda" else None
    rss = PeakRss().start()
    if framework == "torch":
        workload = TorchWorkload(spec, seed, device, withOptimizer=False)
    else:
        workload = OursWorkload(spec, seed, withOptimizer=False)
    x, y = workload.makeData(xh, yh)
    workload.infer(x)
    workload.sync()
    result = {"method": rss.method, "inferRssBytes": rss.growth()}
    workload.setupOptimizer()
    workload.train(x, y)
    workload.sync()
    result["trainRssBytes"] = rss.growth()
    if devicePeak is not None:
        result["trainDeviceBytes"] = devicePeak()
    return result


def _devicePeak(framework):
    """A function returning the growth, since this call, of the device memory held by the framework's
    caching allocator at its peak (torch: max_memory_reserved; CuPy's pool keeps every block it ever
    held until freed explicitly, so its total_bytes is its peak)."""
    if framework == "torch":
        import torch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_reserved()
        return lambda: torch.cuda.max_memory_reserved() - base
    backend.xp.zeros(1)  # create the CUDA context before the baseline, as torch.cuda.synchronize does
    backend.synchronize()
    pool = backend.xp.get_default_memory_pool()
    pool.free_all_blocks()
    base = pool.total_bytes()
    return lambda: pool.total_bytes() - base
