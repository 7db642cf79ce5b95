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
        "| peak RSS growth, MiB, train: macrobatch / torch | infer: macrobatch / torch |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    memory = results.get("memory", {})
    for key, r in results["models"].items():
        cells = [r["title"]]
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
        lines.append("Memory is the peak resident set size (RSS, host memory) of a fresh process over its "
                     f"baseline after imports and data: building the network and inference on {s['memorySteps']} "
                     f"batches, then Adam and {s['memorySteps']} training steps (peak so far).")
        if any("trainDeviceBytes" in fw for per in memory.values() for fw in per.values()):
            lines.append("Device memory (peak reserved by the caching allocator, training), MiB: " + "; ".join(
                f"{results['models'][k]['title'] if k in results['models'] else k} "
                f"{_memoryCell(memory, k, 'trainDeviceBytes')}" for k in memory) + ".")
    roof = results.get("roof")
    if roof:
        lines += ["", f"**Roof.** sgemm ({roof['library']}, {roof['n']}x{roof['n']} float32, median of "
                      f"{roof['repeats']}): {roof['gflops']:.0f} GFLOP/s (torch.mm: {roof['torchGflops']:.0f})."]
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
