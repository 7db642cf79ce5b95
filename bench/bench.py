"""Benchmark macrobatch against PyTorch, the same work in one process: ``python bench/bench.py``.

For each model (MLP 784-1024-1024-10, LeNet-28, CNN-BN-32; fp32, batch 128, and LeNet and CNN-BN again at
batch 32, where per-batch overhead shows) it checks that both
frameworks, started from the same weights, give the same losses (eval, and two training steps), then times
training (forward, cross-entropy, backward, Adam) and inference in interleaved blocks and reports
samples/s and the ratio macrobatch / PyTorch. It also measures the peak RSS of each framework in a
child process (batch 128), the sgemm roof of the machine and the fraction of it the MLP step reaches, and
``trainFromHost`` on an HDF5 file against ``train`` on resident data. With the CuPy backend the
comparison is against PyTorch CUDA (TF32 off on both), plus the macrobatch upload rate against a
pinned-memory copy.

Results are printed and written to bench/results/latest.json and latest.md (the table for the README), with
the CPU model and its vector extensions (AVX2, AVX-512, VNNI, AMX flags), which decide the GEMM kernels.

``--mixed`` runs the mixed-precision rows instead (mixedprecision.py): the activation memory of one
training step in float32, float16 and bfloat16 (measured: tracemalloc on NumPy, the memory pool on CuPy),
and training speed of each against PyTorch float32 and torch.autocast (bfloat16 on the CPU; float16 with
a GradScaler on CUDA), written to bench/results/mixed.json and mixed.md. NumPy has no fast float16 GEMM,
so on the CPU float16 is much slower than float32: the rows there show correctness and memory (about
2 minutes for the MLP, the default model there); the speed case is the GPU.

Options:
  --quick              a short smoke run (3 repeats of 0.25 s blocks, a 20,000-sample stream file, a
                       1024 sgemm): well under a minute, numbers only indicative
  --models M[,M...]    models to run, from mlp, lenet, cnnbn (default: all three; with --mixed on the
                       CPU: mlp, as a float16 step of the others takes 15 s to a minute there)
  --no-small-batch     skip the batch-32 rows of the models among lenet, cnnbn
  --mixed              the mixed-precision rows only (memory and speed, float32 against 16-bit)
  --repeats N          timed blocks per framework and model (default 7; --quick: 3)
  --block-seconds S    minimum length of a timed block; steps per block are calibrated (default 1.0)
  --stream-samples N   samples in the streaming HDF5 file (default 200000; --quick: 20000)
  --stream-repeats N   alternating (resident, from file) epoch pairs per streaming comparison (default 1)
  --no-memory          skip the peak-memory child processes
  --no-stream          skip the streaming comparison
  --out DIR            where latest.json and latest.md go (default: bench/results)
  --seed N             seed of the weights and data (default 0)
  --readme             also put the results table into README.md, between its bench-table markers

The stream file is written once under <tempdir>/macrobatch-bench/ and reused. MACROBATCH_BACKEND=cpu
forces the NumPy backend on a machine with a GPU (then the comparison is against PyTorch CPU).
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import h5py
import numpy

from macrobatch.engine import backend, parallel
from macrobatch.engine.gemm import matmul

import measure
import report
from mixedprecision import mixedPrecision
from models import mlpStepFlops, specs
from streaming import streamingRatios, uploadRates
from workloads import OursWorkload, TorchWorkload, batchsize, crossEntropy, hostData, peakMemory

smallBatch = 32
smallBatchModels = ("lenet", "cnnbn")

parityTolerance = 1e-4
calibrationSteps = 3
memorySteps = 3
maxStepsPerBlock = 512


def parseArgs(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--models", help=f"comma-separated, from {', '.join(specs)}")
    parser.add_argument("--mixed", action="store_true", help="the mixed-precision rows only")
    parser.add_argument("--no-small-batch", action="store_true", help=f"skip the batch-{smallBatch} rows")
    parser.add_argument("--repeats", type=int, help="timed blocks per framework (default 7, quick 3)")
    parser.add_argument("--block-seconds", type=float, help="minimum seconds per timed block (default 1.0)")
    parser.add_argument("--stream-samples", type=int, help="samples in the stream file (default 200000)")
    parser.add_argument("--stream-repeats", type=int, help="epoch pairs per streaming comparison (default 1)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    parser.add_argument("--no-stream", action="store_true", help="skip the streaming comparison")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readme", action="store_true", help="also put the table into README.md")
    args = parser.parse_args(argv)
    defaults = {"repeats": (7, 3), "block_seconds": (1.0, 0.25), "stream_samples": (200000, 20000),
                "stream_repeats": (1, 1)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.gemmSize = 1024 if args.quick else 4096 if backend.isCuda else 2048
    if args.models is None:
        args.models = "mlp" if args.mixed and not backend.isCuda else ",".join(specs)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in specs]
    if unknown or not args.models:
        parser.error(f"--models: unknown {unknown}; choose from {', '.join(specs)}")
    if args.mixed and args.readme:
        parser.error("--readme puts the float32 table into README.md; --mixed writes mixed.md only")
    if min(args.repeats, args.stream_repeats) < 1 or args.block_seconds <= 0 or args.stream_samples < 10000:
        parser.error("--repeats and --stream-repeats must be >= 1, --block-seconds > 0, --stream-samples >= 10000")
    return args


def log(message):
    print(message, flush=True)


def setUpTorch():
    """Import torch, give it every core and choose its device to match our backend."""
    import torch
    torch.set_num_threads(os.cpu_count())
    if not backend.isCuda:
        return torch, "cpu"
    if not torch.cuda.is_available():
        raise SystemExit("macrobatch runs on CUDA but this torch build sees no GPU; install a CUDA torch "
                         "or run with MACROBATCH_BACKEND=cpu")
    # fp32 on both sides: CuPy's matmul is plain fp32 unless CUPY_TF32 is set; torch's cuDNN uses TF32 by default
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch, "cuda"


def machineInfo(torch, device):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    info = {"cpu": measure.cpuModel(), "vectorExtensions": measure.cpuVectorExtensions(),
            "cores": os.cpu_count(), "platform": platform.platform(),
            "backend": backend.name, "torchDevice": device, "torchThreads": torch.get_num_threads(),
            "numpyBlas": measure.numpyBlas(),
            "ourThreads": {"workers": parallel.workers, "blasOwned": parallel.ownsBlas},
            "threadEnv": measure.threadEnv(), "commit": measure.gitCommit(repo),
            "versions": {"python": platform.python_version(), "numpy": numpy.__version__,
                         "torch": torch.__version__, "h5py": h5py.__version__,
                         "macrobatch": measure.packageVersion("macrobatch")}}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["versions"]["cupy"] = backend.xp.__version__
    return info


def checkParity(spec, ours, theirs, seed, batch):
    """From the same weights on the same batch both frameworks must give the same losses: in eval mode,
    in the first training step, and in a second step on the batch (after one Adam update). The eval loss
    is taken before any update: after one, parameters whose gradient is rounding noise (a convolution's
    bias ahead of BatchNorm) move by +-learnRate in either framework, and eval mode, normalising with
    running statistics, no longer cancels that."""
    xh, yh = hostData(spec, batch, seed)
    losses = {}
    for workload in (ours, theirs):
        x, y = workload.makeData(xh, yh)
        evalLoss = crossEntropy(workload.infer(x), yh)
        losses[workload.name] = (evalLoss, workload.train(x, y), workload.train(x, y))
    rel = [abs(a - b) / max(abs(a), abs(b), 1e-12) for a, b in zip(losses["macrobatch"], losses["torch"])]
    if max(rel) > parityTolerance or not all(map(math.isfinite, losses["macrobatch"] + losses["torch"])):
        raise SystemExit(f"{spec.title}: macrobatch and PyTorch disagree from the same weights "
                         f"(losses eval, step 1, step 2: macrobatch {losses['macrobatch']}, torch {losses['torch']}; "
                         f"relative differences {rel}, tolerance {parityTolerance})")
    return {"losses": losses, "maxRelativeDifference": max(rel)}


def stepsPerBlock(workloads, method, data, blockSeconds):
    """Whole steps per timed block: enough that the slower framework's block lasts blockSeconds."""
    perStep = 0.0
    for workload in workloads:
        args = data[workload.name]
        run = lambda: getattr(workload, method)(*args)
        run()  # warm-up: buffers, caches, first-call set-up
        perStep = max(perStep, measure.timeBlock(run, workload.sync) / calibrationSteps)
    return max(2, min(maxStepsPerBlock, math.ceil(blockSeconds / perStep)))


def benchModel(key, args, device, extra, batch=batchsize):
    """Parity check, then interleaved timing of training and inference in batches of batch samples. extra:
    more contenders (name -> (work, sync)) interleaved with the training blocks; returns (result, their
    block seconds)."""
    spec = specs[key]
    log(f"{spec.title}, batch {batch}: parity check")
    ours = OursWorkload(spec, args.seed, batch=batch)
    theirs = TorchWorkload(spec, args.seed, device, weightsFrom=ours.net, batch=batch)
    result = {"title": spec.title, "batchsize": batch, "parity": checkParity(spec, ours, theirs, args.seed, batch)}
    workloads = (ours, theirs)

    xh, yh = hostData(spec, calibrationSteps * batch, args.seed + 1)
    calib = {w.name: w.makeData(xh, yh) for w in workloads}
    steps = {"train": stepsPerBlock(workloads, "train", calib, args.block_seconds),
             "infer": stepsPerBlock(workloads, "infer", {k: v[:1] for k, v in calib.items()}, args.block_seconds)}
    del calib
    xh, yh = hostData(spec, max(steps.values()) * batch, args.seed + 2)
    data = {w.name: w.makeData(xh, yh) for w in workloads}
    extraTimes = {}
    for method in ("train", "infer"):
        n = steps[method] * batch
        blocks = {}
        for w in workloads:
            x, y = (a[:n] for a in data[w.name])
            work = getattr(w, method)
            blocks[w.name] = ((lambda work=work, x=x, y=y: work(x, y)) if method == "train"
                              else (lambda work=work, x=x: work(x)), w.sync)
        if method == "train":
            blocks.update(extra)
        times = measure.interleaved(blocks, args.repeats)
        if method == "train":
            extraTimes = {name: times.pop(name) for name in extra}
        entry = {name: measure.summarise(seconds, n) for name, seconds in times.items()}
        entry["ratio"] = measure.pairedRatio(times["macrobatch"], times["torch"])
        entry["stepsPerBlock"] = steps[method]
        result[method] = entry
        log(f"  {method}: macrobatch {entry['macrobatch']['samplesPerSec']:,.0f}/s, "
            f"torch {entry['torch']['samplesPerSec']:,.0f}/s, ratio {entry['ratio']:.2f} "
            f"({steps[method]} steps per block)")
    return result, extraTimes


def gemmContenders(torch, device, n, seed):
    """Timed blocks of one (n, n) @ (n, n) float32 matmul: 'sgemm' through macrobatch's matmul (CuPy's, or
    on the CPU NumPy's single-threaded BLAS split over macrobatch's threads, as the layers run it) and
    'torch.mm', each run once here as a warm-up."""
    xp = backend.xp
    rng = numpy.random.default_rng(seed)
    a, b = (rng.standard_normal((n, n), dtype=numpy.float32) for _ in range(2))
    da, db, dout = backend.toDevice(a), backend.toDevice(b), xp.empty((n, n), dtype=numpy.float32)
    ta, tb = (torch.from_numpy(m).to(device) for m in (a, b))
    tout = torch.empty((n, n), device=device)
    contenders = {"sgemm": (lambda: matmul(da, db, out=dout), backend.synchronize),
                  "torch.mm": (lambda: torch.mm(ta, tb, out=tout),
                               torch.cuda.synchronize if device == "cuda" else lambda: None)}
    for work, sync in contenders.values():
        measure.timeBlock(work, sync)
    return contenders


def roof(gemmTimes, n, mlpResult):
    """sgemm GFLOP/s (medians over the blocks) and the MLP training step's GEMM rate as a fraction of
    the sgemm rate, pair by pair (the blocks were interleaved, so each pair saw the same machine)."""
    flops = 2 * n ** 3
    rates = {name: [flops / s / 1e9 for s in seconds] for name, seconds in gemmTimes.items()}
    result = {"library": backend.xp.__name__, "n": n, "repeats": len(rates["sgemm"]),
              "gflops": statistics.median(rates["sgemm"]), "torchGflops": statistics.median(rates["torch.mm"])}
    if mlpResult is not None:
        stepFlops = mlpStepFlops(specs["mlp"], batchsize)
        blockFlops = stepFlops * mlpResult["train"]["stepsPerBlock"]
        step = {"flops": stepFlops, "formula": "3 * 2N sum(in*out) - 2N * in0 * out0"}
        for name in ("macrobatch", "torch"):
            achieved = [blockFlops / s / 1e9 for s in mlpResult["train"][name]["blockSeconds"]]
            step[f"{name}Gflops"] = statistics.median(achieved)
            step[f"{name}Fraction"] = statistics.median(a / r for a, r in zip(achieved, rates["sgemm"]))
        result["mlpStep"] = step
    log(f"roof: sgemm {result['gflops']:.0f} GFLOP/s ({result['library']}), "
        f"torch.mm {result['torchGflops']:.0f} GFLOP/s")
    return result


def writeAtomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def spliceReadme(text, path=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")):
    """Put the results between the README's bench-table markers."""
    start, end = "<!-- bench-table -->\n", "<!-- /bench-table -->"
    with open(path) as f:
        readme = f.read()
    head, tail = readme.index(start) + len(start), readme.index(end)
    writeAtomic(path, readme[:head] + text.rstrip("\n") + "\n" + readme[tail:])


def writeResults(results, out, name, text):
    """Print the report and write it and the JSON results as <out>/<name>.md and .json."""
    print("\n" + text)
    os.makedirs(out, exist_ok=True)
    writeAtomic(os.path.join(out, f"{name}.json"), json.dumps(results, indent=1) + "\n")
    writeAtomic(os.path.join(out, f"{name}.md"), text)
    log(f"written to {out}/{name}.json and {name}.md in {results['seconds']:.0f} s")


def main(argv=None):
    args = parseArgs(argv)
    began = time.perf_counter()
    torch, device = setUpTorch()
    torch.manual_seed(args.seed)
    machine = machineInfo(torch, device)
    vector = ", ".join(machine["vectorExtensions"] or ["vector extensions unknown"])
    log(f"{machine['cpu']} ({machine['cores']} cores; {vector}), backend {machine['backend']}, torch on {device} with "
        f"{machine['torchThreads']} threads, NumPy BLAS {machine['numpyBlas']}")
    if args.mixed:
        results = {"machine": machine, **mixedPrecision(args, torch, device, log)}
        results["seconds"] = time.perf_counter() - began
        writeResults(results, args.out, "mixed", report.mixedMarkdown(results))
        return
    results = {"machine": machine,
               "settings": {"batchsize": batchsize, "repeats": args.repeats, "blockSeconds": args.block_seconds,
                            "quick": args.quick, "seed": args.seed, "parityTolerance": parityTolerance,
                            "memorySteps": memorySteps, "torchAdam": "torch.optim.Adam(lr=1e-3), defaults"},
               "models": {}}
    gemm = gemmContenders(torch, device, args.gemmSize, args.seed)
    gemmTimes = None
    for key in args.models:
        # the roof is timed between the MLP's training blocks, so that the fraction compares like with like
        results["models"][key], times = benchModel(key, args, device, gemm if key == "mlp" else {})
        gemmTimes = gemmTimes or times
    for key in [] if args.no_small_batch else [m for m in args.models if m in smallBatchModels]:
        results["models"][f"{key}@{smallBatch}"], _ = benchModel(key, args, device, {}, smallBatch)
    if not gemmTimes:
        gemmTimes = measure.interleaved(gemm, args.repeats)
    results["roof"] = roof(gemmTimes, args.gemmSize, results["models"].get("mlp"))
    del gemm
    if not args.no_memory:
        results["memory"] = {}
        for key in args.models:
            results["memory"][key] = {name: measure.inChild(peakMemory, name, key, args.seed, device,
                                                            os.cpu_count(), memorySteps)
                                      for name in ("macrobatch", "torch")}
            log(f"memory {specs[key].title}: " + ", ".join(
                f"{name} train +{r['trainRssBytes'] / 2 ** 20:.0f} MiB RSS"
                for name, r in results["memory"][key].items()))
    if not args.no_stream:
        log("streaming (writes the HDF5 file on first use)")
        results["streaming"] = streamingRatios(args.stream_samples, 10000, args.stream_repeats, args.seed, log)
    if backend.isCuda:
        results["upload"] = uploadRates(10000, 10 if args.quick else 30, args.seed)
    results["seconds"] = time.perf_counter() - began

    text = report.markdown(results)
    writeResults(results, args.out, "latest", text)
    if args.readme:
        spliceReadme(text)
        log("and into README.md")


if __name__ == "__main__":
    main(sys.argv[1:])
