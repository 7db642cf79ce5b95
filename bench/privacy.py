"""Per-sample gradients and DP-SGD against a plain step and against Opacus: ``python bench/privacy.py``.

For each model (the bench's MLP 784-1024-1024-10 and LeNet-28, float32, batch 128, SGD) it times, in one
process, interleaved blocks of whole steps: macrobatch's plain Trainer step, perSampleGradients and
perSampleGradNorms (forward and per-sample backward), the DP-SGD step (DifferentialPrivacy through a Trainer,
clip 1, noise 1; with ghost norms, with materialised per-sample gradients, and with ghost norms and noise 0,
which shows what the noise costs), and on PyTorch CPU a plain step and Opacus 1.6's DP step (PrivacyEngine,
grad_sample_mode "hooks" and "ghost", clip 1, noise 1, no Poisson sampling: the same fixed batches for every
contender). Every contender starts from macrobatch's weights (bench/models.py copyWeights).

Reported: samples/s (medians of the blocks), each DP step over the plain step of its framework (median of
the pairwise block ratios), macrobatch's DP step against Opacus's, and memory: the peak RSS growth of two
steps in a fresh child process per contender (bench/measure.py PeakRss), and for macrobatch also the peak
bytes of the arrays one step allocates (tracemalloc, NumPy backend). Written to bench/results/privacy.json
and privacy.md with the CPU model.

Options:
  --quick            3 repeats of 0.3 s blocks, no memory measurements: a smoke run, numbers only indicative
  --models M[,M...]  from mlp, lenet (default both)
  --repeats N        timed blocks per contender (default 7)
  --block-seconds S  minimum length of a timed block (default 1.0)
  --no-memory        skip the memory measurements
  --out DIR          where privacy.json and privacy.md go (default: bench/results)
  --seed N           seed of the weights and data (default 0)

Threads: every core for NumPy's BLAS, macrobatch's workers and torch, unless OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MACROBATCH_CPU_THREADS say otherwise (torch follows OMP_NUM_THREADS).
"""
import argparse
import json
import math
import os
import platform
import statistics
import time
import warnings

import numpy

from macrobatch.costs import CrossEntropy
from macrobatch.engine import backend, setSeed, toDevice
from macrobatch.handlers import Trainer
from macrobatch.modules.persample import perSampleGradients, perSampleGradNorms
from macrobatch.optimizers import SGD
from macrobatch.privacy.differentialprivacy import DifferentialPrivacy

import measure
from models import buildOurs, buildTorch, copyWeights, specs
from workloads import hostData

models = ("mlp", "lenet")
batch = 128
learnRate = 0.01
clipNorm, noiseMultiplier = 1.0, 1.0
ours = ("plain", "perSampleGradients", "perSampleGradNorms", "dp ghost", "dp ghost, no noise", "dp materialised")
theirs = ("torch plain", "opacus hooks", "opacus ghost")
versusOpacus = (("dp ghost", "opacus hooks"), ("dp ghost", "opacus ghost"), ("dp materialised", "opacus hooks"))
targets = {"mlp": 2.0, "lenet": 3.0}
memoryTarget = 1.5
maxStepsPerBlock = 64


def parseArgs(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--models", default=",".join(models), help=f"comma-separated, from {', '.join(models)}")
    parser.add_argument("--repeats", type=int, help="timed blocks per contender (default 7, quick 3)")
    parser.add_argument("--block-seconds", type=float, help="minimum seconds per timed block (default 1.0)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.models = args.models.split(",")
    if set(args.models) - set(models):
        parser.error(f"--models: unknown {sorted(set(args.models) - set(models))}; choose from {', '.join(models)}")
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.block_seconds = args.block_seconds or (0.3 if args.quick else 1.0)
    args.no_memory = args.no_memory or args.quick
    if args.repeats < 1 or args.block_seconds <= 0:
        parser.error("--repeats must be >= 1 and --block-seconds > 0")
    return args


def log(message):
    print(message, flush=True)


def oursContender(name, spec, seed):
    """(net, run): our network of spec (seeded init) and run(x, y), one step of contender name per batch of
    the device arrays x, y."""
    setSeed(seed)
    net, cost = buildOurs(spec), CrossEntropy()
    if name in ("perSampleGradients", "perSampleGradNorms"):
        compute = perSampleGradients if name == "perSampleGradients" else perSampleGradNorms

        def run(x, y):
            for start in range(0, x.shape[0], batch):
                compute(net, cost, x[start:start + batch], cost.prepareTarget(y[start:start + batch]))
        return net, run
    optimizer = SGD(learnRate) if name == "plain" else DifferentialPrivacy(
        SGD(learnRate), clipNorm, 0.0 if name.endswith("no noise") else noiseMultiplier, ghost="ghost" in name)
    optimizer.setupOn(net)
    trainer = Trainer(net, cost, optimizer, batchsize=batch)
    return net, lambda x, y: trainer.train(x, y, random=False)


def torchContender(name, spec, seed, weightsFrom):
    """run(x, y): one step of contender name per batch of the torch tensors x, y (torch's own SGD, or Opacus's
    PrivacyEngine around it), from the weights of our network weightsFrom."""
    import torch
    from torch import nn
    net = buildTorch(spec)
    copyWeights(weightsFrom, net)
    optimizer, criterion = torch.optim.SGD(net.parameters(), lr=learnRate), nn.CrossEntropyLoss()
    if name != "torch plain":
        from opacus import PrivacyEngine
        mode = name.split()[1]
        # the loader only tells Opacus the expected batch size; run feeds it the batches
        placeholder = torch.utils.data.TensorDataset(torch.zeros((batch,) + spec.inshape), torch.zeros(batch))
        made = PrivacyEngine().make_private(
            module=net, optimizer=optimizer, data_loader=torch.utils.data.DataLoader(placeholder, batch_size=batch),
            noise_multiplier=noiseMultiplier, max_grad_norm=clipNorm, poisson_sampling=False,
            grad_sample_mode=mode, criterion=criterion)
        net, optimizer = made[0], made[1]
        criterion = made[2] if mode == "ghost" else criterion

    def run(x, y):
        for start in range(0, x.shape[0], batch):
            optimizer.zero_grad()
            criterion(net(x[start:start + batch]), y[start:start + batch]).backward()
            optimizer.step()
    return run


def contenders(spec, seed, xh, yh, steps=None):
    """name -> run() of every contender: steps[name] batches of the host batches xh, yh (default: all of them);
    the device and torch copies made once."""
    import torch
    x, y = toDevice(xh), toDevice(yh.astype(numpy.int32))
    tx, ty = torch.from_numpy(xh), torch.from_numpy(yh)
    runs = {}
    for name in ours + theirs:
        if name in ours:
            net, run = oursContender(name, spec, seed)
            data = (x, y)
        else:
            run, data = torchContender(name, spec, seed, net), (tx, ty)
        n = xh.shape[0] if steps is None else steps[name] * batch
        runs[name] = lambda run=run, a=data[0][:n], b=data[1][:n]: run(a, b)
    return runs


def plainOf(name):
    return "plain" if name in ours else "torch plain"


def benchModel(key, args):
    """Calibrate each contender's steps per block, then time interleaved blocks; ratios from the seconds per step."""
    spec = specs[key]
    log(f"{spec.title}, batch {batch}: calibrating")
    probe = 2
    xh, yh = hostData(spec, probe * batch, args.seed + 1)
    steps = {}
    for name, run in contenders(spec, args.seed, xh, yh).items():
        run()  # warm-up: buffers, hooks, first-call set-up
        perStep = measure.timeBlock(run, backend.synchronize) / probe
        steps[name] = max(1, min(maxStepsPerBlock, math.ceil(args.block_seconds / perStep)))
    xh, yh = hostData(spec, max(steps.values()) * batch, args.seed + 2)
    runs = contenders(spec, args.seed, xh, yh, steps)
    for run in runs.values():
        run()
    times = measure.interleaved({name: (run, backend.synchronize) for name, run in runs.items()}, args.repeats)
    perStep = {name: [t / steps[name] for t in seconds] for name, seconds in times.items()}
    result = {"title": spec.title, "batchsize": batch, "stepsPerBlock": steps,
              "contenders": {name: measure.summarise(seconds, steps[name] * batch) for name, seconds in times.items()},
              "overPlain": {name: statistics.median(t / p for t, p in zip(perStep[name], perStep[plainOf(name)]))
                            for name in runs if name != plainOf(name)},
              "speedupOverOpacus": {f"{mine} / {other}": measure.pairedRatio(perStep[mine], perStep[other])
                                    for mine, other in versusOpacus}}
    for name, entry in result["contenders"].items():
        log(f"  {name}: {entry['samplesPerSec']:,.0f} samples/s (spread {entry['spread']:.2f}, {steps[name]} steps)")
    log("  time over plain: " + ", ".join(f"{k} {v:.2f}x" for k, v in result["overPlain"].items()))
    log("  ours faster than Opacus: " + ", ".join(f"{k} {v:.2f}x" for k, v in result["speedupOverOpacus"].items()))
    if not args.no_memory:
        result["memory"] = memory(key, args.seed)
    return result


def memory(key, seed):
    """Peak RSS growth of two steps of each step contender in a fresh child, and for ours the peak array bytes
    of one step (after one step of warm-up) under tracemalloc."""
    result = {"rssBytes": {}, "arrayPeakBytes": {}}
    for name in ("plain", "dp ghost", "dp ghost, no noise", "dp materialised") + theirs:
        result["rssBytes"][name] = measure.inChild(childPeakRss, key, name, seed)
        log(f"  peak RSS growth, {name}: {result['rssBytes'][name] / 2 ** 20:.1f} MiB")
    spec = specs[key]
    xh, yh = hostData(spec, batch, seed + 3)
    x, y = toDevice(xh), toDevice(yh.astype(numpy.int32))
    for name in ("plain", "dp ghost", "dp ghost, no noise", "dp materialised"):
        _, run = oursContender(name, spec, seed)
        run(x, y)
        arrays = measure.ArrayMemory().start()
        run(x, y)
        result["arrayPeakBytes"][name] = arrays.peak()
        arrays.stop()
        log(f"  step array peak, {name}: {result['arrayPeakBytes'][name] / 2 ** 20:.1f} MiB")
    return result


def childPeakRss(key, name, seed):
    """In a fresh process: peak RSS growth (bytes) over building contender name on model key and two of its steps
    on one batch, after imports and data creation."""
    import torch
    torch.set_num_threads(torchThreads())
    warnings.filterwarnings("ignore")
    spec = specs[key]
    xh, yh = hostData(spec, batch, seed + 3)
    x, y = toDevice(xh), toDevice(yh.astype(numpy.int32))
    tx, ty = torch.from_numpy(xh), torch.from_numpy(yh)
    rss = measure.PeakRss().start()
    if name in theirs:
        setSeed(seed)
        run = torchContender(name, spec, seed, buildOurs(spec))
        x, y = tx, ty
    else:
        _, run = oursContender(name, spec, seed)
    run(x, y)
    run(x, y)
    return rss.growth()


def torchThreads():
    """OMP_NUM_THREADS where set (as OpenBLAS and macrobatch's workers read theirs), else every core."""
    return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))


def machineInfo():
    import opacus
    import torch
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {"cpu": measure.cpuModel(), "cores": os.cpu_count(), "platform": platform.platform(),
            "backend": backend.name, "torchThreads": torch.get_num_threads(), "numpyBlas": measure.numpyBlas(),
            "threadEnv": measure.threadEnv(), "commit": measure.gitCommit(repo),
            "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__,
                         "opacus": opacus.__version__, "macrobatch": measure.packageVersion("macrobatch")}}


def report(results):
    """The markdown tables of results (for privacy.md and the README): speed, then memory."""
    info = results["machine"]
    threads = info["threadEnv"].get("OPENBLAS_NUM_THREADS", info["cores"])
    lines = [f"### Per-sample gradients and DP-SGD: macrobatch vs Opacus {info['versions']['opacus']}, "
             f"fp32, batch {batch}, SGD", "",
             f"{info['cpu']}, {info['cores']} cores; macrobatch backend `{info['backend']}`, NumPy "
             f"{info['versions']['numpy']} ({threads} BLAS threads), torch {info['versions']['torch']} "
             f"({info['torchThreads']} threads), commit {info['commit']}. DP steps: clip {clipNorm}, noise multiplier "
             f"{noiseMultiplier}.", "",
             "| model | contender | samples/s | time vs plain step | macrobatch DP ghost faster by |",
             "|---|---|--:|--:|--:|"]
    for result in results["models"].values():
        for name, entry in result["contenders"].items():
            over = result["overPlain"].get(name)
            faster = [f"**{v:.2f}x**" for k, v in result["speedupOverOpacus"].items() if k == f"dp ghost / {name}"]
            lines.append(f"| {result['title']} | {name} | {entry['samplesPerSec']:,.0f} | "
                         f"{'-' if over is None else f'**{over:.2f}x**'} | {''.join(faster) or '-'} |")
    memories = {r["title"]: r["memory"] for r in results["models"].values() if "memory" in r}
    if memories:
        lines += ["", "| model | contender | peak RSS growth, MiB | vs plain | step array peak, MiB | vs plain |",
                  "|---|---|--:|--:|--:|--:|"]
        for title, memory in memories.items():
            rss, arrays = memory["rssBytes"], memory["arrayPeakBytes"]
            for name in rss:
                plain = plainOf(name)
                array = (f"{arrays[name] / 2 ** 20:.1f} | {arrays[name] / arrays[plain]:.2f}x" if name in arrays
                         else "- | -")
                lines.append(f"| {title} | {name} | {rss[name] / 2 ** 20:.1f} | {rss[name] / rss[plain]:.2f}x | "
                             f"{array} |")
    lines += ["", "Targets: a DP step at most " + ", ".join(f"{v:g}x ({specs[k].title})" for k, v in targets.items())
              + f" the time of a plain step, faster than Opacus's; ghost clipping's peak memory at most "
              f"{memoryTarget:g}x the plain step's.",
              "Speed: interleaved timed blocks of whole steps (about 1 s), medians; the ratios are medians of the "
              "pairwise block ratios; a contender's plain step is its framework's. Memory: peak RSS growth of a fresh "
              "process over building the contender and two steps on one batch; step array peak: the bytes of the "
              "arrays one macrobatch step allocates, after one step of warm-up (tracemalloc; weights, gradients and "
              "the batch exist before and are not counted)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parseArgs(argv)
    warnings.filterwarnings("ignore", message="Secure RNG turned off")
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    import torch
    torch.set_num_threads(torchThreads())
    began = time.perf_counter()
    results = {"machine": machineInfo(), "models": {key: benchModel(key, args) for key in args.models}}
    results["seconds"] = time.perf_counter() - began
    text = report(results)
    print("\n" + text)
    os.makedirs(args.out, exist_ok=True)
    for ext, content in (("json", json.dumps(results, indent=1) + "\n"), ("md", text)):
        path = os.path.join(args.out, f"privacy.{ext}")
        with open(path + ".tmp", "w") as f:
            f.write(content)
        os.replace(path + ".tmp", path)
    log(f"written to {args.out}/privacy.json and privacy.md in {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
