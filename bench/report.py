"""The benchmark's results as a markdown report (printed, and written beside the JSON)."""


def _rate(value):
    return f"{value:,.0f}"


def mib(nbytes, digits=0):
    return "-" if nbytes is None else f"{nbytes / 2 ** 20:,.{digits}f}"


def _memoryCell(memory, key, field):
    ours, theirs = (memory.get(key, {}).get(name, {}).get(field) for name in ("macrobatch", "torch"))
    return f"{mib(ours)} / {mib(theirs)}"


def _machineLine(m):
    v = m["versions"]
    return (f"{m['cpu']}, {m['cores']} cores; macrobatch backend `{m['backend']}`"
            + (f" on {m['gpu']}" if m.get("gpu") else "")
            + (f"; vector extensions {', '.join(m['vectorExtensions']) or 'none of AVX/AVX-512/AMX'}"
               if m.get("vectorExtensions") is not None else "")
            + f"; Python {v['python']}, NumPy {v['numpy']} ({m['numpyBlas']}), torch {v['torch']} "
            f"({m['torchThreads']} threads), h5py {v['h5py']}, macrobatch {v['macrobatch']}"
            + (f" (commit {m['commit']})" if m.get("commit") else "") + _ourThreads(m) + ".")


def _ourThreads(m):
    """How macrobatch ran its CPU work (engine.parallel), where recorded."""
    threads = m.get("ourThreads")
    if not threads or m["backend"] == "cuda":
        return ""
    blas = "the BLAS on one thread in each" if threads["blasOwned"] else "the BLAS on the threads the user set"
    return f"; macrobatch on {threads['workers']} threads of its own, {blas}"


def markdown(results):
    """A markdown report: the setup line, the throughput table, the roof, streaming and upload lines."""
    m, s = results["machine"], results["settings"]
    them = f"PyTorch {m['torchDevice'].upper()}"
    lines = [
        f"### macrobatch vs {them}: fp32, Adam",
        "",
        _machineLine(m),
        "",
        "| model | batch | train samples/s: macrobatch | torch | ratio | infer samples/s: macrobatch | torch | ratio "
        "| peak RSS growth, MiB, train: macrobatch / torch | infer: macrobatch / torch |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    memory = results.get("memory", {})
    for key, r in results["models"].items():
        cells = [r["title"], str(r.get("batchsize", s["batchsize"]))]
        for phase in (r["train"], r["infer"]):
            cells += [_rate(phase["macrobatch"]["samplesPerSec"]), _rate(phase["torch"]["samplesPerSec"]),
                      f"**{phase['ratio']:.2f}**"]
        cells += [_memoryCell(memory, key, "trainRssBytes"), _memoryCell(memory, key, "inferRssBytes")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Ratio = macrobatch / PyTorch (above 1: macrobatch is faster), the median over {s['repeats']} interleaved "
        f"pairs of timed blocks (macrobatch, torch, macrobatch, ...), each of the same whole steps for both, "
        f"about {s['blockSeconds']:g} s for the slower one, after warm-up; samples/s are medians over the blocks. A training step is forward, "
        "cross-entropy, backward and the Adam update; macrobatch runs `Trainer.train` and `Calculator.calc`, "
        "PyTorch `zero_grad`, forward, `F.cross_entropy`, `backward`, `Adam.step` and `eval()` under `no_grad`. "
        f"Both start from the same weights: before timing, their eval loss and the losses of two training "
        f"steps on one batch agree within {s['parityTolerance']:g} relative.",
    ]
    if memory:
        lines.append(f"Memory (batch {s['batchsize']}) is the peak resident set size (RSS, host memory) of a fresh "
                     f"process over its baseline after imports and data: building the network and inference on "
                     f"{s['memorySteps']} batches, then Adam and {s['memorySteps']} training steps (peak so far).")
        if any("trainDeviceBytes" in fw for per in memory.values() for fw in per.values()):
            lines.append("Device memory (peak reserved by the caching allocator, training), MiB: " + "; ".join(
                f"{results['models'][k]['title'] if k in results['models'] else k} "
                f"{_memoryCell(memory, k, 'trainDeviceBytes')}" for k in memory) + ".")
    roof = results.get("roof")
    if roof:
        lines += ["", f"**Roof.** sgemm (macrobatch's matmul on {roof['library']}, {roof['n']}x{roof['n']} float32, "
                      f"median of {roof['repeats']}): {roof['gflops']:.0f} GFLOP/s "
                      f"(torch.mm: {roof['torchGflops']:.0f})."]
        f = roof.get("mlpStep")
        if f:
            lines[-1] += (f" The MLP step counts 3F - 2·N·784·1024 GEMM FLOPs, F = 2·N·Σ in·out the forward "
                          f"(the backward is the weight gradients, F, and the input gradients but the first "
                          f"layer's), {f['flops'] / 1e9:.2f} GFLOP at N = {s['batchsize']}: macrobatch runs it at "
                          f"{f['macrobatchGflops']:.0f} GFLOP/s, {f['macrobatchFraction']:.0%} of the roof, torch at "
                          f"{f['torchGflops']:.0f} GFLOP/s, {f['torchFraction']:.0%} (each block against the sgemm "
                          "block timed beside it).")
    stream = results.get("streaming")
    if stream:
        lines += ["", f"**Streaming** (MLP, epochs of {stream['samples']:,} samples of 784 float32, macrobatch "
                      f"{stream['macroBatchSize']:,}, batch {stream['batchsize']}; {stream['repeats']} alternating "
                      "pair(s) of epochs, medians; the HDF5 file is read from the OS page cache, which cannot be "
                      "dropped here):", "",
                  "| order | `train` on resident data, samples/s | `trainFromHost` on the HDF5 file | ratio |",
                  "|---|--:|--:|--:|"]
        for key in ("sequential", "random"):
            r = stream[key]
            lines.append(f"| random={key == 'random'} | {_rate(r['residentSamplesPerSec'])} "
                         f"| {_rate(r['fromHostSamplesPerSec'])} | **{r['ratio']:.2f}** |")
    upload = results.get("upload")
    if upload:
        lines += ["", f"**Upload** of a {upload['bytes'] / 2 ** 20:.0f} MiB macrobatch: `toDevice` "
                      f"{upload['toDeviceGBps']:.1f} GB/s, pinned copy {upload['pinnedGBps']:.1f} GB/s "
                      f"(ratio {upload['ratio']:.2f})."]
    return "\n".join(lines) + "\n"


def mixedMarkdown(results):
    """The mixed-precision report: the setup line, the GEMM rates, and per model a table of first-step
    loss, activation memory and training speed of each contender, with the 16-bit / float32 ratios."""
    m, s, g = results["machine"], results["settings"], results["gemm"]
    cpu = m["torchDevice"] == "cpu"
    lines = [f"### Mixed precision: macrobatch float32 / float16 / bfloat16 vs PyTorch float32 / autocast "
             f"({s['torchAutocast']}), batch {s['batchsize']}, Adam", "", _machineLine(m), "",
             f"Matmul ({g['library']}, {g['n']}x{g['n']}): " + ", ".join(
                 f"{dtype} {rate:,.1f} GFLOP/s" for dtype, rate in g["gflops"].items()) + "."]
    if cpu:
        lines += ["", "**On the CPU NumPy has no fast half-precision GEMM** (a float16 matmul is an unblocked loop, "
                      "not BLAS: the row above), so the layers multiply 16-bit data as float32 copies "
                      "(engine/gemm.py), and float16's elementwise work still runs NumPy's slow float16 loops: on "
                      "the CPU 16 bits is kept correct, not fast, and these rows show its correctness and memory "
                      "(the float32 copies count in its peak). The speed case is the GPU."]
    for r in results["models"].values():
        lines += ["", f"**{r['title']}**", "",
                  "| contender | first-step loss | step arrays held, MiB | step peak, MiB | vs float32: held | peak "
                  "| train samples/s | vs float32 |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
        for name, mem in r["memory"].items():
            memRatio, speedRatio = r["memoryRatio"].get(name), r["speedRatio"].get(name)
            cells = [name, f"{mem['loss']:.5f}", mib(mem["heldBytes"], 2), mib(mem["peakBytes"], 2),
                     "-" if memRatio is None else f"**{memRatio['heldBytes']:.2f}**",
                     "-" if memRatio is None else f"{memRatio['peakBytes']:.2f}",
                     _rate(r["speed"][name]["samplesPerSec"]), "-" if speedRatio is None else f"**{speedRatio:.2f}**"]
            lines.append("| " + " | ".join(cells) + " |")
    for what, why in results["skipped"].items():
        lines += ["", f"Skipped {what}: {why}"]
    lines += ["", "Memory: for each contender a fresh network from the same weights and one training step (forward, "
                  "cross-entropy, backward, Adam) on one batch; counted are the arrays the step allocates "
                  + ("(tracemalloc, which NumPy reports its buffers to)" if m["backend"] != "cuda" else
                     "(CuPy's memory pool; PyTorch's caching allocator, allocated bytes)")
                  + ": held after the step (the layers' outputs, kept for the backward, and their input gradients) "
                  "and at the step's peak. Weights, float32 masters, the 16-bit working copy, Adam's moments, "
                  "gradients and the batch exist before the step and are not counted. "
                  + ("PyTorch's CPU allocator is not traced: no PyTorch memory on the CPU. " if cpu else
                     "PyTorch's figures are of its second step (torch.optim.Adam makes its moments in the first) "
                     "and it frees the saved activations in the backward: compare peaks. ")
                  + f"The first-step losses, same weights and batch, must agree with float32 within "
                  + ", ".join(f"{tol:g} ({p})" for p, tol in s["parityTolerance"].items()) + " relative.",
              f"Speed: interleaved timed blocks of whole training steps, about {s['blockSeconds']:g} s (at least one "
              f"step) per contender, {s['repeats']} each; samples/s are medians, the ratio to float32 in the same "
              "framework the median of the pairwise ratios."]
    return "\n".join(lines) + "\n"
