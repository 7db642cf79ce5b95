"""The precision table of a trained network: model file size, inference speed (macrobatch and ONNX Runtime,
batch 1 and 128) and test accuracy at float32, float16 and int8, each from the files written and read back."""
import os
import statistics
import time

import numpy

from ..engine.backend import toDevice, toHost
from ..modules.summary import estimate
from .quantize import loadQuantized, quantizeModel

tablePrecisions = ("float32", "float16", "int8")


def cpuName():
    """This machine's CPU model and the int8 dot-product extensions ONNX Runtime's kernels use (VNNI)."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    vnni = sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    return f"{model}, {os.cpu_count()} cores, {'+'.join(vnni) if vnni else 'no VNNI'}"


def measurePrecisions(net, inputShape, batches, testData, testLabels, folder, method="minmax", percentile=99.99,
                      batchsizes=(1, 128), onnx=True, rounds=3, threads=1):
    """One row per precision of tablePrecisions for net (float32), as host dicts: 'precision', 'fileBytes'
    (its macrobatch model file, written in folder), 'accuracy' on testData/testLabels (host arrays) and
    'speed' {batchsize: samples/s} of the model loaded back from that file; with onnx, also 'onnxBytes',
    'onnxAccuracy' and 'onnxSpeed' for ONNX Runtime on `threads` threads (float32: exportOnnx's model; int8:
    quantizeOnnx's QDQ model from the same batches and method; float16: none, ONNX Runtime's CPU provider
    has no float16 Conv/Gemm kernels on x86 and runs a float16 model in float32 behind Cast nodes). int8 is
    calibrated on batches (host arrays) by method at percentile. A speed is batchsize / the median latency
    of runsFor(batchsize) passes on zeros (modules.summary.estimate for macrobatch, which synchronises the
    device around each); every figure is taken in each of `rounds` rounds over all models and the best
    kept, so that a load from other processes that comes and goes does not favour the model timed while it
    was away. ONNX Runtime runs on `threads` threads; NumPy on its BLAS's (OPENBLAS_NUM_THREADS).
    """
    rows, timers = [], []  # timers: (speed dict to fill, batchsize -> median seconds per pass)
    for precision in tablePrecisions:
        path = os.path.join(folder, f"{precision}.h5")
        model = net if precision == "float32" else quantizeModel(net, precision, batches, method, percentile)
        model.save(path, inputShape)
        model = loadQuantized(path)
        row = {"precision": precision, "fileBytes": os.path.getsize(path), "speed": {},
               "accuracy": accuracy(lambda x: toHost(model(toDevice(x, model.dtype))), testData, testLabels)}
        timers.append((row["speed"], lambda b, model=model: estimate(model, inputShape, b, runsFor(b), warmup=3)
                       ["medianLatency"]))
        if onnx and precision != "float16":
            run = onnxRunner(net, precision, inputShape, batches, folder, method, percentile, threads)
            row.update({"onnxBytes": os.path.getsize(os.path.join(folder, f"{precision}.onnx")), "onnxSpeed": {},
                        "onnxAccuracy": accuracy(run, testData, testLabels)})
            timers.append((row["onnxSpeed"], lambda b, run=run: medianLatency(
                run, numpy.zeros((b,) + tuple(inputShape), numpy.float32), runsFor(b))))
        rows.append(row)
    for _ in range(rounds):
        for speed, latency in timers:
            for b in batchsizes:
                speed[b] = max(speed.get(b, 0.0), b / latency(b))
    return rows


def onnxRunner(net, precision, inputShape, batches, folder, method, percentile, threads):
    """Write net's ONNX model at precision 'float32' or 'int8' to folder and return a function running it in
    ONNX Runtime (host batch -> host outputs)."""
    import onnxruntime

    from .onnxexport import exportOnnx
    from .onnxquantize import quantizeOnnx

    floatPath = os.path.join(folder, "float32.onnx")
    path = os.path.join(folder, f"{precision}.onnx")
    if precision == "float32":
        exportOnnx(net, floatPath, inputShape)
    else:
        quantizeOnnx(floatPath, path, batches, method, percentile)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: numpy.ascontiguousarray(x, dtype=numpy.float32)})[0]


def runsFor(batchsize):
    """Timed passes per speed figure: enough small batches for a stable median, fewer large ones."""
    return max(20, 300 // batchsize)


def medianLatency(run, x, runs, warmup=5):
    """The median wall time of run(x) over runs calls, after warmup untimed ones."""
    for _ in range(warmup):
        run(x)
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        run(x)
        latencies.append(time.perf_counter() - start)
    return statistics.median(latencies)


def accuracy(predict, data, labels, batchsize=256):
    """The fraction of samples whose highest score from predict (host batch -> host scores) is their label."""
    hits = sum(int((predict(data[i:i + batchsize]).argmax(axis=1) == labels[i:i + batchsize]).sum())
               for i in range(0, len(labels), batchsize))
    return hits / len(labels)


def formatTable(rows, title, cpu):
    """A markdown table of measurePrecisions' rows: precision | file sizes | samples/s and ratio to float32
    per framework and batch size | test accuracy; title and cpu head it."""
    base = rows[0]
    batchsizes = list(base["speed"])
    onnx = "onnxSpeed" in base
    head = ["precision", "model file (ratio)"] + (["ONNX file (ratio)"] if onnx else [])
    head += [f"macrobatch b{b} samples/s (×)" for b in batchsizes]
    head += [f"ORT b{b} samples/s (×)" for b in batchsizes] if onnx else []
    head += ["accuracy"] + (["ORT accuracy"] if onnx else [])

    def ratio(value, ref):
        return f"{value:,.0f} ({value / ref:.2f}×)"

    lines = [f"**{title}** — {cpu}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["precision"], f"{row['fileBytes']:,} B ({row['fileBytes'] / base['fileBytes']:.2f}×)"]
        hasOnnx = "onnxSpeed" in row
        if onnx:
            cells.append(f"{row['onnxBytes']:,} B ({row['onnxBytes'] / base['onnxBytes']:.2f}×)"
                         if hasOnnx else "—")
        cells += [ratio(row["speed"][b], base["speed"][b]) for b in batchsizes]
        if onnx:
            cells += [ratio(row["onnxSpeed"][b], base["onnxSpeed"][b]) if hasOnnx else "—" for b in batchsizes]
        cells.append(f"{100 * row['accuracy']:.2f}%")
        if onnx:
            cells.append(f"{100 * row['onnxAccuracy']:.2f}%" if hasOnnx else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
