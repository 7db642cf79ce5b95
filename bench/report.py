"""The benchmark's results as a markdown report (printed, and written beside the JSON)."""


def _rate(value):
    return f"{value:,.0f}"


def _mib(nbytes):
    return "-" if nbytes is None else f"{nbytes / 2 ** 20:,.0f}"


def _memoryCell(memory, key, field):
    ours, theirs = (memory.get(key, {}).get(name, {}).get(field) for name in ("macrobatch", "torch"))
    return f"{_mib(ours)} / {_mib(theirs)}"


def markdown(results):
    """A markdown report: the setup line, the throughput table, the roof, streaming and upload lines."""
    m, s = results["machine"], results["settings"]
    v = m["versions"]
    them = f"PyTorch {m['torchDevice'].upper()}"
    lines = [
        f"### macrobatch vs {them}: fp32, batch {s['batchsize']}, Adam",
        "",
        f"{m['cpu']}, {m['cores']} cores; macrobatch backend `{m['backend']}`"
        + (f" on {m['gpu']}" if m.get("gpu") else "")
        + f"; Python {v['python']}, NumPy {v['numpy']} ({m['numpyBlas']}), torch {v['torch']} "
        f"({m['torchThreads']} threads), h5py {v['h5py']}, macrobatch {v['macrobatch']}"
        + (f" (commit {m['commit']})" if m.get("commit") else "") + ".",
        "",
        "| model | train samples/s: macrobatch | torch | ratio | infer samples/s: macrobatch | torch | ratio "
        "| peak RSS growth train, MiB: macrobatch / torch | infer |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    memory = results.get("memory", {})
    for key, r in results["models"].items():
        t, i = r["train"], r["infer"]
        lines.append(
            f"| {r['title']} | {_rate(t['macrobatch']['samplesPerSec'])} | {_rate(t['torch']['samplesPerSec'])} "
            f"| **{t['ratio']:.2f}** | {_rate(i['macrobatch']['samplesPerSec'])} | {_rate(i['torch']['samplesPerSec'])} "
            f"| **{i['ratio']:.2f}** | {_memoryCell(memory, key, 'trainRssBytes')} "
            f"| {_memoryCell(memory, key, 'inferRssBytes')} |")
    lines += [
        "",
        f"Ratio = macrobatch / PyTorch (above 1: macrobatch is faster), the median over {s['repeats']} interleaved "
        f"pairs of timed blocks (macrobatch, torch, macrobatch, ...), each block {s['blockSeconds']:g} s or more "
        "of whole steps after warm-up; samples/s are medians over the blocks. A training step is forward, "
        "cross-entropy, backward and the Adam update; macrobatch runs `Trainer.train` and `Calculator.calc`, "
        "PyTorch `zero_grad`, forward, `F.cross_entropy`, `backward`, `Adam.step` and `eval()` under `no_grad`. "
        f"Both start from the same weights: before timing, their eval loss and the losses of two training "
        f"steps on one batch agree within {s['parityTolerance']:g} relative.",
    ]
    if memory:
        lines.append("Memory is the peak resident set size (RSS, host memory) of a fresh process over its "
                     f"baseline after imports and data: building the network and inference on {s['memorySteps']} "
                     f"batches, then Adam and {s['memorySteps']} training steps (peak so far).")
        if any("trainDeviceBytes" in fw for per in memory.values() for fw in per.values()):
            lines.append("Device memory (peak reserved by the caching allocator, training), MiB: " + "; ".join(
                f"{results['models'][k]['title'] if k in results['models'] else k} "
                f"{_memoryCell(memory, k, 'trainDeviceBytes')}" for k in memory) + ".")
    roof = results.get("roof")
    if roof:
        f = roof["mlpStep"]
        lines += ["", f"**Roof.** sgemm ({roof['library']}, {roof['n']}x{roof['n']}, median of {roof['repeats']}): "
                      f"{roof['gflops']:.0f} GFLOP/s (torch.mm: {roof['torchGflops']:.0f}). "
                      f"MLP step = 3F - 2·N·784·1024 with F = 2·N·Σ in·out (forward GEMMs; the backward has the "
                      f"weight gradients, F, and the input gradients but the first layer's) = "
                      f"{f['flops'] / 1e9:.2f} GFLOP at N = {s['batchsize']}: macrobatch reaches "
                      f"{f['macrobatchGflops']:.0f} GFLOP/s ({f['macrobatchFraction']:.0%} of the roof), "
                      f"torch {f['torchGflops']:.0f} GFLOP/s ({f['torchFraction']:.0%})."]
    stream = results.get("streaming")
    if stream:
        lines += ["", f"**Streaming** (MLP, one epoch of {stream['samples']:,} samples of 784 float32 per run, "
                      f"macrobatch {stream['macroBatchSize']:,}, batch {stream['batchsize']}; the HDF5 file is read "
                      "from the OS page cache, which cannot be dropped here):", "",
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
