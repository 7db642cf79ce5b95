"""The benchmark's mixed-precision rows (``bench.py --mixed``): activation memory and training speed of
the same network in float32 and in 16 bits, macrobatch ``Trainer(precision=...)`` against PyTorch autocast.

Memory: for each precision a fresh network (same seeded weights), one batch uploaded in the dtype the
network computes in, then one training step (forward, cross-entropy, backward, Adam) through the Trainer,
with ``ArrayMemory`` counting the arrays allocated during the step: ``held`` after it (what the modules
keep: the forward's outputs, which the backward reads, and the backward's input gradients) and the
``peak`` (with the temporaries). The weights, the float32 masters and their 16-bit working copy, Adam's
moments, the gradients and the batch exist before the step and are not counted. The loss of that first
step, from the same weights on the same batch, is the correctness check: each 16-bit loss must agree with
the float32 one within ``parityTolerance``. On a GPU PyTorch's second step is measured alike, by its
caching allocator's allocated bytes (PyTorch frees the saved activations in the backward, so there its
``peak`` is the figure to compare).

Speed: timed blocks of whole training steps, interleaved across the contenders (macrobatch in each
precision, PyTorch float32 and PyTorch autocast), each block about ``blockSeconds`` long for its own
contender; rates are medians, ratios the median of the pairwise ratios to float32 in the same framework.
PyTorch's autocast dtype is its device's default: bfloat16 on the CPU, float16 with a GradScaler on CUDA.

On the CPU NumPy has no fast half-precision GEMM: a float16 matmul runs an unblocked loop, not BLAS (the
``gemm`` row measures it). The modules' GEMMs therefore multiply 16-bit data as float32 copies there
(engine.gemm.matmul), and the rest of a float16 step (NumPy's float16 elementwise loops) stays slower than
float32: the CPU path is for correctness and memory; the speed case is the GPU, whose tensor cores
multiply 16-bit inputs. The float32 copies and products count in the 16-bit steps' peak.
"""
import gc
import math
import statistics

import numpy

from macrobatch.engine import backend
from macrobatch.engine.errors import DtypeError

import measure
from models import specs
from report import mib
from workloads import OursWorkload, TorchWorkload, batchsize, hostData

halfPrecisions = ("float16", "bfloat16")
parityTolerance = {"float16": 1e-2, "bfloat16": 3e-2}
maxStepsPerBlock = 256
gemmSize = 4096 if backend.isCuda else 256  # NumPy's float16 matmul runs at a fraction of a GFLOP/s
gemmBlockSeconds = 0.05


def mixedPrecision(args, torch, device, log):
    """The mixed-precision results of every model in args.models, and the half-precision GEMM row."""
    results = {"settings": {"batchsize": batchsize, "repeats": args.repeats, "blockSeconds": args.block_seconds,
                            "seed": args.seed, "parityTolerance": parityTolerance,
                            "torchAutocast": torchAutocastName(device)},
               "gemm": gemmRates(gemmSize, args.seed), "models": {}, "skipped": {}}
    log(f"gemm ({gemmSize}x{gemmSize}): " + ", ".join(
        f"{dtype} {gflops:.1f} GFLOP/s" for dtype, gflops in results["gemm"]["gflops"].items()))
    for key in args.models:
        results["models"][key] = benchModel(key, args, torch, device, results["skipped"], log)
    return results


def torchAutocastName(device):
    """The dtype torch.autocast computes in by default on device: float16 on CUDA, bfloat16 on the CPU."""
    return "float16" if device == "cuda" else "bfloat16"


def gemmRates(n, seed):
    """GFLOP/s of an (n, n) @ (n, n) matmul with the backend's array module in float32 and float16: the
    median of 3 blocks of as many calls as last about gemmBlockSeconds, after a timed warm-up call."""
    xp = backend.xp
    a, b = numpy.random.default_rng(seed).standard_normal((2, n, n), dtype=numpy.float32)
    rates = {}
    for dtype in ("float32", "float16"):
        da, db = backend.toDevice(a.astype(dtype)), backend.toDevice(b.astype(dtype))
        calls = math.ceil(gemmBlockSeconds / measure.timeBlock(lambda: xp.matmul(da, db), backend.synchronize))
        block = lambda: [xp.matmul(da, db) for _ in range(calls)]
        seconds = statistics.median(measure.timeBlock(block, backend.synchronize) for _ in range(3))
        rates[dtype] = 2 * n ** 3 * calls / seconds / 1e9
    return {"n": n, "library": xp.__name__, "gflops": rates}


def benchModel(key, args, torch, device, skipped, log):
    """Memory and first-step losses of each contender from the same weights, then interleaved timing."""
    spec = specs[key]
    log(f"{spec.title}: mixed precision, memory and first-step losses")
    xh, yh = hostData(spec, batchsize, args.seed)
    full = OursWorkload(spec, args.seed)
    theirs = {f"torch {name}": TorchWorkload(spec, args.seed, device, weightsFrom=full.net, autocast=dtype)
              for name, dtype in (("float32", None), ("autocast", getattr(torch, torchAutocastName(device))))}
    contenders = {"macrobatch float32": full}
    memory = {"macrobatch float32": stepMemory(full, xh, yh)}
    for precision in halfPrecisions:
        name = f"macrobatch {precision}"
        try:
            contenders[name] = OursWorkload(spec, args.seed, precision=precision)
            memory[name] = stepMemory(contenders[name], xh, yh)
        except DtypeError as error:
            if precision == "float16":
                raise
            # bfloat16 where the backend refuses it (no ml_dtypes, or an array library without it): skipped
            contenders.pop(name, None)
            skipped[f"{key} {precision}"] = f"{type(error).__name__}: {error}"
            log(f"  skipped {precision}: {skipped[f'{key} {precision}']}")
    contenders.update(theirs)
    memory.update({name: torchStepMemory(torch, w, xh, yh, device) for name, w in theirs.items()})
    pairs = [(f"macrobatch {p}", "macrobatch float32", parityTolerance[p]) for p in halfPrecisions
             if f"macrobatch {p}" in memory]
    pairs.append(("torch autocast", "torch float32", parityTolerance[torchAutocastName(device)]))
    checkLosses(spec, memory, pairs)
    for name, m in memory.items():
        log(f"  {name}: first-step loss {m['loss']:.5f}, step held {mib(m['heldBytes'], 2)} MiB, "
            f"peak {mib(m['peakBytes'], 2)} MiB")
    speed = timeContenders(spec, contenders, args, log)
    result = {"title": spec.title, "memory": memory, "speed": speed, "memoryRatio": {}, "speedRatio": {}}
    for half, base, _ in pairs:
        result["speedRatio"][half] = pairedRatio(speed, half, base)
        if memory[half]["heldBytes"] is not None:
            result["memoryRatio"][half] = {field: memory[half][field] / memory[base][field]
                                           for field in ("heldBytes", "peakBytes")}
            log(f"  memory {half} / {base}: held {result['memoryRatio'][half]['heldBytes']:.2f}, "
                f"peak {result['memoryRatio'][half]['peakBytes']:.2f}")
        log(f"  speed {half} / {base}: {result['speedRatio'][half]:.2f}")
    return result


def stepMemory(workload, xh, yh):
    """One training step of a fresh macrobatch workload on one batch: its loss and the array bytes the
    step allocated (held after it, at peak)."""
    x, y = workload.makeData(xh, yh)
    gc.collect()
    memory = measure.ArrayMemory().start()
    try:
        loss = workload.train(x, y)
        return {"loss": loss, "heldBytes": memory.held(), "peakBytes": memory.peak(),
                "dtype": str(workload.net.dtype)}
    finally:
        memory.stop()


def torchStepMemory(torch, workload, xh, yh, device):
    """PyTorch's first step on the batch: its loss and, on CUDA, the bytes its caching allocator handed out
    over a second step (held after it, at peak): torch.optim.Adam makes its moments in the first step,
    where macrobatch's exist from setupOn. torch's CPU allocator is not traced, so None there."""
    x, y = workload.makeData(xh, yh)
    result = {"loss": workload.train(x, y), "heldBytes": None, "peakBytes": None}
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        workload.train(x, y)
        torch.cuda.synchronize()
        result.update(heldBytes=torch.cuda.memory_allocated() - base,
                      peakBytes=torch.cuda.max_memory_allocated() - base)
    return result


def checkLosses(spec, memory, pairs):
    """Every 16-bit first-step loss within its tolerance of the float32 one of its framework (same weights,
    same batch; pairs: (16-bit name, float32 name, tolerance)): a fast path that computes something else is
    no result."""
    for half, full, tolerance in pairs:
        a, b = memory[half]["loss"], memory[full]["loss"]
        rel = abs(a - b) / max(abs(b), 1e-12)
        memory[half]["lossRelativeDifference"] = rel
        if not (math.isfinite(a) and rel <= tolerance):
            raise SystemExit(f"{spec.title}: the {half} first-step loss {a} is not within {tolerance:g} relative "
                             f"of the {full} one {b} (relative difference {rel:.3g}), from the same weights")


def timeContenders(spec, contenders, args, log):
    """Interleaved timed blocks of training steps; each contender's block is as many whole steps as make
    about blockSeconds for it (at least one), timed after one calibration step."""
    xh, yh = hostData(spec, batchsize, args.seed + 1)
    steps, blocks = {}, {}
    for name, w in contenders.items():
        x, y = w.makeData(xh, yh)
        perStep = measure.timeBlock(lambda: w.train(x, y), w.sync)
        steps[name] = max(1, min(maxStepsPerBlock, math.ceil(args.block_seconds / perStep)))
    xh, yh = hostData(spec, max(steps.values()) * batchsize, args.seed + 2)
    for name, w in contenders.items():
        x, y = (a[:steps[name] * batchsize] for a in w.makeData(xh, yh))
        blocks[name] = (lambda w=w, x=x, y=y: w.train(x, y), w.sync)
    times = measure.interleaved(blocks, args.repeats)
    speed = {}
    for name, seconds in times.items():
        speed[name] = measure.summarise(seconds, steps[name] * batchsize)
        speed[name]["stepsPerBlock"] = steps[name]
        log(f"  train {name}: {speed[name]['samplesPerSec']:,.0f} samples/s ({steps[name]} steps per block)")
    return speed


def pairedRatio(speed, name, base):
    """Median over the interleaved repetitions of (rate of name / rate of base)."""
    return statistics.median(
        (speed[name]["stepsPerBlock"] / s) / (speed[base]["stepsPerBlock"] / t)
        for s, t in zip(speed[name]["blockSeconds"], speed[base]["blockSeconds"]))
