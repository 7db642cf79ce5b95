"""Inspection of an HDF5 file before training on it (exploratory data analysis for array datasets).

For every dataset in the file, groups included: layout (shape, dtype, chunking, compression), and for
numeric ones min / max / mean / std, NaN and Inf counts, per-class counts of label datasets and the
exact duplicate rows in a sample. Everything is read in bounded contiguous slices of rows, so a file
larger than memory can be inspected, and the sample is a few contiguous blocks, never scattered rows
(an HDF5 read of scattered rows is 50-100x slower).
"""
import hashlib
import math

import h5py
import numpy

from ..engine import serialize
from ..engine.errors import DatasetError, LabelError
from ..engine.checks import checkPositiveInt
from ..handlers.hostreader import HostReader
from .labelstats import LabelStats

maxSampleBlocks = 16
minSampleBlockRows = 64


def inspectH5(path, sampleSize=10000, labels=None, chunkBytes=1 << 26):
    """Describe every dataset of the HDF5 file at path as a host dict (plain Python values).

    sampleSize: rows read to look for duplicate rows (all rows when the dataset has no more);
    labels: names of the 1-D integer datasets to count per class (paths inside the file, e.g.
    "labels" or "train/y"; [] counts none); None counts those whose name ends in "labels";
    chunkBytes: bound on the float64 copy of one read (peak memory is a few times this: the next
    read is made in the background, and NaN or Inf in a read cost a copy of its finite values).

    Returns {"path", "datasets": [entry, ...]} in name order, each entry with keys name, shape, dtype,
    chunks, compression, compressionOpts, storageBytes, numeric, and
      stats: {"count", "min", "max", "mean", "std"} over the finite values, in float64 (std with
        ddof 0; min and max are Python ints for integer data), None for non-numeric data;
      nan, inf: counts over all values (None for non-numeric data);
      classes: {label: count} in label order for label datasets, else None;
      order: for label datasets, {"meanRun", "chanceRun", "sorted", "note"}: the length of the run of one
        label a sample sits in (averaged over samples), the same in random order, whether runs are far
        longer than chance (a file sorted by class, whose contiguous macrobatches each hold a few
        classes) and the warning to print; else None;
      duplicates: {"sample", "rows", "blocks", "count", "fraction"}: count rows of the sample that are
        byte-for-byte copies of an earlier sampled row; None for scalars and label datasets.
    """
    sampleSize = checkPositiveInt(sampleSize, "sampleSize")
    chunkBytes = checkPositiveInt(chunkBytes, "chunkBytes")
    with serialize.openH5(path) as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        names.sort()
        labelNames = findLabels(f, names, labels)
        return {"path": f.filename,
                "datasets": [inspectDataset(f[name], name, sampleSize, name in labelNames, chunkBytes)
                             for name in names]}


def isLabelLike(ds):
    return ds.shape is not None and len(ds.shape) == 1 and ds.dtype.kind in "biu"


def findLabels(f, names, labels):
    """The set of dataset names to count per class; a named dataset must exist and be 1-D integers."""
    if labels is None:
        return {name for name in names if name.lower().endswith("labels") and isLabelLike(f[name])}
    found = set()
    for name in [labels] if isinstance(labels, str) else labels:
        key = name.lstrip("/")
        if key not in names:
            raise DatasetError(f"{f.filename}: no dataset {name!r} to count labels in; it holds {names}")
        if not isLabelLike(f[key]):
            raise LabelError(f"{f.filename}: {name!r} cannot be counted as labels: they must be integers in one "
                             f"dimension, got {f[key].dtype} of shape {f[key].shape}")
        found.add(key)
    return found


def dtypeName(dtype):
    string = h5py.check_string_dtype(dtype)
    if string is not None:
        length = "variable length" if string.length is None else f"{string.length} bytes"
        return f"string ({string.encoding}, {length})"
    return str(dtype)


def inspectDataset(ds, name, sampleSize, isLabels, chunkBytes):
    numeric = ds.dtype.kind in "biuf"
    entry = {"name": name, "shape": ds.shape, "dtype": dtypeName(ds.dtype), "chunks": ds.chunks,
             "compression": ds.compression, "compressionOpts": ds.compression_opts,
             "storageBytes": ds.id.get_storage_size(), "numeric": numeric,
             "stats": None, "nan": None, "inf": None, "classes": None, "order": None, "duplicates": None}
    if ds.shape is None:  # an HDF5 "empty" dataset: a type and no dataspace
        return entry
    if numeric:
        if ds.shape == ():
            blocks = [numpy.asarray(ds[()]).reshape(1)]
        else:
            blocks = HostReader([ds], rowSpans([(0, ds.shape[0])], readRows(ds, chunkBytes)), lambda block: block)
        moments = {"count": 0, "mean": 0.0, "m2": 0.0, "min": None, "max": None, "nan": 0, "inf": 0}
        labelStats = LabelStats()
        for block in blocks:
            mergeMoments(moments, blockMoments(block))
            if isLabels:
                labelStats.add(block)
        entry["nan"], entry["inf"] = moments["nan"], moments["inf"]
        count = moments["count"]
        entry["stats"] = {"count": count, "min": moments["min"], "max": moments["max"],
                          "mean": moments["mean"] if count else None,
                          "std": math.sqrt(moments["m2"] / count) if count else None}
        if isLabels:
            entry["classes"] = dict(sorted(labelStats.counts.items()))
            entry["order"] = {"meanRun": labelStats.meanRun, "chanceRun": labelStats.chanceRun,
                              "sorted": labelStats.isSorted, "note": labelStats.sortedNote(name)}
    if ds.shape != () and not isLabels:
        entry["duplicates"] = duplicateRows(ds, sampleSize, chunkBytes)
    return entry


def readRows(ds, chunkBytes):
    """Rows per read: as many as fit chunkBytes in float64, a whole number of HDF5 chunks where that
    fits, so no compressed chunk is decompressed twice."""
    rows = max(1, chunkBytes // (8 * max(1, math.prod(ds.shape[1:]))))
    if ds.chunks is not None and rows >= ds.chunks[0]:
        rows -= rows % ds.chunks[0]
    return rows


def rowSpans(spans, rows):
    """Each (start, stop) span cut into contiguous reads of at most rows rows."""
    return [(start, min(start + rows, stop)) for begin, stop in spans for start in range(begin, stop, rows)]


def blockMoments(block):
    """Count, mean, sum of squared deviations, min and max of the finite values of one block, in
    float64, and its NaN and Inf counts."""
    values = block.astype(numpy.float64).ravel()
    nan = inf = 0
    if block.dtype.kind == "f":
        finite = numpy.isfinite(values)
        if not finite.all():
            nan = int(numpy.isnan(values).sum())
            inf = values.size - nan - int(finite.sum())
            values = values[finite]
    if values.size == 0:
        return {"count": 0, "mean": 0.0, "m2": 0.0, "min": None, "max": None, "nan": nan, "inf": inf}
    if block.dtype.kind == "f":
        low, high = float(values.min()), float(values.max())
    else:  # exact, even past 2**53
        low, high = int(block.min()), int(block.max())
    mean = float(values.mean())
    values -= mean
    return {"count": values.size, "mean": mean, "m2": float(numpy.dot(values, values)),
            "min": low, "max": high, "nan": nan, "inf": inf}


def mergeMoments(total, part):
    """Fold one block's moments into the running ones (Chan et al.'s pairwise update: stable where
    summing squares would cancel)."""
    total["nan"] += part["nan"]
    total["inf"] += part["inf"]
    if part["count"] == 0:
        return
    count = total["count"] + part["count"]
    delta = part["mean"] - total["mean"]
    total["mean"] += delta * part["count"] / count
    total["m2"] += part["m2"] + delta * delta * total["count"] * part["count"] / count
    total["count"] = count
    total["min"] = part["min"] if total["min"] is None else min(total["min"], part["min"])
    total["max"] = part["max"] if total["max"] is None else max(total["max"], part["max"])


def sampleSpans(rows, sampleSize):
    """The (start, stop) blocks read for the duplicate search: all rows when there are at most
    sampleSize, else up to 16 equal contiguous blocks (of at least 64 rows) at evenly spaced starts,
    sampleSize rows in all, rounded down to a multiple of the block count."""
    if rows <= sampleSize:
        return [(0, rows)] if rows else []
    blocks = max(1, min(maxSampleBlocks, sampleSize // minSampleBlockRows))
    size = sampleSize // blocks
    # starts i * rows // blocks are at least rows // blocks >= size apart, so blocks never overlap
    return [(i * rows // blocks, i * rows // blocks + size) for i in range(blocks)]


def rowDigest(row):
    # variable-length strings arrive as object arrays, whose bytes would be pointers: hash their values
    data = repr(row.tolist()).encode() if row.dtype.kind == "O" else row.tobytes()
    return hashlib.blake2b(data, digest_size=16).digest()


def duplicateRows(ds, sampleSize, chunkBytes):
    """Rows of the sample equal, byte for byte, to an earlier sampled row; rows are kept as 16-byte
    digests, so the memory used does not grow with the row size."""
    spans = sampleSpans(ds.shape[0], sampleSize)
    seen = set()
    sampled = 0
    for block in HostReader([ds], rowSpans(spans, readRows(ds, chunkBytes)), numpy.ascontiguousarray):
        seen.update(rowDigest(row) for row in block.reshape(len(block), -1))
        sampled += len(block)
    count = sampled - len(seen)
    return {"sample": sampled, "rows": ds.shape[0], "blocks": len(spans), "count": count,
            "fraction": count / sampled if sampled else 0.0}


def formatBytes(size):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


def formatLayout(entry):
    if entry["chunks"] is None:
        layout = "contiguous"
    else:
        layout = f"chunks {entry['chunks']}"
        if entry["compression"] is not None:
            opts = "" if entry["compressionOpts"] is None else f" {entry['compressionOpts']}"
            layout += f", {entry['compression']}{opts}"
    return f"{layout}, {formatBytes(entry['storageBytes'])} on disk"


def formatClasses(classes, shown=20):
    total = sum(classes.values())
    parts = [f"{label}: {count} ({count / total:.1%})" for label, count in list(classes.items())[:shown]]
    if len(classes) > shown:
        parts.append(f"... and {len(classes) - shown} more")
    counts = classes.values()
    return (f"  classes: {len(classes)}, largest/smallest {max(counts) / min(counts):.2f}\n"
            f"    " + ", ".join(parts))


def formatEntry(entry):
    shape = "empty dataspace" if entry["shape"] is None else str(entry["shape"])
    lines = [f"{entry['name']}: {entry['dtype']} {shape}, {formatLayout(entry)}"]
    stats = entry["stats"]
    if not entry["numeric"]:
        lines.append("  non-numeric: no statistics")
    elif stats is not None:
        isFloat = numpy.dtype(entry["dtype"]).kind == "f"
        if stats["count"]:
            lines.append(f"  min {stats['min']:.6g}  max {stats['max']:.6g}  mean {stats['mean']:.6g}  "
                         f"std {stats['std']:.6g}  over {stats['count']}{' finite' if isFloat else ''} values")
        else:
            lines.append("  no finite values" if isFloat else "  no values")
        if isFloat:
            lines.append(f"  NaN {entry['nan']}  Inf {entry['inf']}")
    if entry["classes"]:
        lines.append(formatClasses(entry["classes"]))
    if entry["order"] and entry["order"]["sorted"]:
        lines.append(f"  warning: {entry['order']['note']}")
    dup = entry["duplicates"]
    if dup is not None and dup["sample"]:
        where = "all rows" if dup["sample"] == dup["rows"] else \
            f"{dup['blocks']} evenly spaced blocks of {dup['sample'] // dup['blocks']} rows out of {dup['rows']}"
        lines.append(f"  duplicate rows: {dup['count']} of {dup['sample']} sampled ({dup['fraction']:.2%}; "
                     f"sample: {where})")
    return "\n".join(lines)


def formatReport(info):
    """A readable text report of inspectH5's dict: a header line, then one block per dataset."""
    count = len(info["datasets"])
    header = f"{info['path']}: {count} dataset{'s' if count != 1 else ''}"
    return "\n\n".join([header] + [formatEntry(entry) for entry in info["datasets"]]) + "\n"


def classHistogram(info, path):
    """Write a PNG bar chart of the per-class counts of every label dataset in inspectH5's dict (one
    panel each) to path, and return path. Needs matplotlib (the optional 'plot' extra); drawn on an Agg
    canvas of its own, so the caller's pyplot backend and state are left alone."""
    counted = [entry for entry in info["datasets"] if entry["classes"]]
    if not counted:
        raise LabelError(f"{info['path']}: no label datasets to plot; name the integer label datasets "
                         "with inspectH5(..., labels=[...])")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("classHistogram draws with matplotlib, an optional dependency: "
                          "pip install macrobatch[plot]") from e
    widest = max(len(entry["classes"]) for entry in counted)
    fig = Figure(figsize=(max(6.0, 0.3 * widest), 3.0 * len(counted)))
    FigureCanvasAgg(fig)
    for ax, entry in zip(fig.subplots(len(counted), 1, squeeze=False)[:, 0], counted):
        ax.bar([str(label) for label in entry["classes"]], list(entry["classes"].values()))
        ax.set_title(f"{entry['name']}: {len(entry['classes'])} classes, {sum(entry['classes'].values())} labels")
        ax.set_xlabel("class")
        ax.set_ylabel("count")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
