"""Conversion of common data formats into the HDF5 layout ``macrobatch train`` reads.

Readers give (data, labels, classNames) in memory: .npy pairs and .npz archives, CSV files with a named
label column, a folder of images with one subfolder per class (Pillow, the optional 'images' extra) and
MNIST-style IDX files. writeTrainingH5 then shuffles once (so that trainFromHost's contiguous
macrobatches each hold every class), splits off validation and test sets and writes chunked datasets
'data', 'labels', 'val_data', ... ."""
import csv
import gzip
import os

import numpy

from ..engine import serialize
from ..engine.errors import DatasetError, ShapeError

idxDtypes = {0x08: numpy.uint8, 0x09: numpy.int8, 0x0B: numpy.dtype(">i2"), 0x0C: numpy.dtype(">i4"),
             0x0D: numpy.dtype(">f4"), 0x0E: numpy.dtype(">f8")}
imageSuffixes = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
chunkBytes = 1 << 20  # default chunk: about 1 MiB of whole rows, read whole by a contiguous slice


def classIndices(values):
    """Integer labels as they are; any other labels (names) as indices into their sorted unique values."""
    values = numpy.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(numpy.int64), None
    if values.dtype.kind == "f" and numpy.all(values == numpy.round(values)):
        return values.astype(numpy.int64), None
    names, indices = numpy.unique(values.astype(str), return_inverse=True)
    return indices.astype(numpy.int64), [str(name) for name in names]


def readNumpy(paths, dataKey="data", labelsKey="labels"):
    """Two .npy files (data, then labels), or one .npz holding dataKey and labelsKey (or 'x' and 'y')."""
    if len(paths) == 2 and all(str(p).endswith(".npy") for p in paths):
        data, labels = (numpy.load(p, allow_pickle=False) for p in paths)
    elif len(paths) == 1 and str(paths[0]).endswith(".npz"):
        with numpy.load(paths[0], allow_pickle=False) as archive:
            keys = list(archive.keys())
            pair = next(((d, l) for d, l in ((dataKey, labelsKey), ("x", "y")) if d in keys and l in keys), None)
            if pair is None:
                raise DatasetError(f"{paths[0]}: no arrays {dataKey!r} and {labelsKey!r} (or 'x' and 'y'); it holds "
                                   f"{keys}: name them with --data-key and --labels-key")
            data, labels = archive[pair[0]], archive[pair[1]]
    else:
        raise DatasetError(f"NumPy input is one .npz file or two .npy files (data, labels), got {list(map(str, paths))}")
    return (data, *classIndices(labels))


def readCsv(path, labelColumn):
    """A CSV file with a header row: labelColumn holds the labels, every other column a numeric feature."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise DatasetError(f"{path}: empty CSV file")
    header, rows = rows[0], rows[1:]
    if labelColumn not in header:
        raise DatasetError(f"{path}: no column {labelColumn!r} for the labels; its columns are {header}")
    column = header.index(labelColumn)
    try:
        data = numpy.array([[float(v) for i, v in enumerate(row) if i != column] for row in rows], numpy.float32)
    except ValueError as e:
        raise DatasetError(f"{path}: every column but {labelColumn!r} must be numeric ({e})") from e
    return (data, *classIndices([row[column] for row in rows]))


def readImageFolder(folder):
    """Images in one subfolder per class (the subfolder's name), as uint8 (N, C, H, W): all the same size
    and the same mode (grey: C = 1, colour: C = 3)."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("reading image folders needs Pillow: pip install macrobatch[images]") from e
    names = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    images, labels = [], []
    for index, name in enumerate(names):
        for file in sorted(os.listdir(os.path.join(folder, name))):
            if file.lower().endswith(imageSuffixes):
                with Image.open(os.path.join(folder, name, file)) as image:
                    pixels = numpy.asarray(image.convert("L" if image.mode in ("1", "L", "I", "F") else "RGB"))
                images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
                labels.append(index)
    if not images:
        raise DatasetError(f"{folder}: no images ({', '.join(imageSuffixes)}) in class subfolders")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ShapeError(f"{folder}: the images differ in size or colour, {sorted(shapes)[:4]}: resize them to one "
                         "size first")
    return numpy.stack(images), numpy.array(labels, numpy.int64), names


def readIdxFile(path):
    """One IDX file (MNIST's format: a magic number giving dtype and rank, big-endian sizes); .gz too."""
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in idxDtypes:
        raise DatasetError(f"{path}: not an IDX file (its magic number is {raw[:4].hex()})")
    rank = raw[3]
    shape = tuple(int(n) for n in numpy.frombuffer(raw, ">u4", rank, 4))
    dtype = numpy.dtype(idxDtypes[raw[2]])
    body = numpy.frombuffer(raw, dtype, offset=4 + 4 * rank)
    if body.size != int(numpy.prod(shape)):
        raise DatasetError(f"{path}: holds {body.size} values for shape {shape}: truncated?")
    return body.reshape(shape).astype(dtype.newbyteorder("="))


def readIdx(paths):
    """An IDX images file and its labels file, in either order; (N, H, W) images get a channel axis."""
    arrays = [readIdxFile(p) for p in paths]
    if len(arrays) != 2 or sorted(a.ndim == 1 for a in arrays) != [False, True]:
        raise DatasetError(f"IDX input is an images file and a labels file, got shapes {[a.shape for a in arrays]}")
    data, labels = sorted(arrays, key=lambda a: a.ndim == 1)
    return (data[:, None] if data.ndim == 3 else data), labels.astype(numpy.int64), None


def isIdx(path):
    if os.path.isdir(path):
        return False
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as f:
        head = f.read(4)
    return len(head) == 4 and head[0] == 0 and head[1] == 0 and head[2] in idxDtypes


def readAny(paths, labelColumn=None, dataKey="data", labelsKey="labels"):
    """(data, labels, classNames) from inputs named by their kind: a folder (images), a .csv, .npy/.npz,
    or IDX files."""
    paths = [str(p) for p in paths]
    for p in paths:
        if not os.path.exists(p):
            raise FileNotFoundError(f"no such file or folder: {p}")
    if len(paths) == 1 and os.path.isdir(paths[0]):
        return readImageFolder(paths[0])
    if len(paths) == 1 and paths[0].endswith(".csv"):
        if labelColumn is None:
            raise DatasetError(f"{paths[0]}: name the label column (--label-column NAME)")
        return readCsv(paths[0], labelColumn)
    if all(p.endswith((".npy", ".npz")) for p in paths):
        return readNumpy(paths, dataKey, labelsKey)
    if all(isIdx(p) for p in paths):
        return readIdx(paths)
    raise DatasetError(f"cannot tell the format of {paths}: give a folder of class subfolders of images, a .csv, "
                       "a .npz or two .npy files, or an IDX images file and labels file")


def splitSizes(size, val, test):
    """Samples for (training, validation, test) of size, for fractions val and test."""
    nVal, nTest = round(size * val), round(size * test)
    if size - nVal - nTest < 1:
        raise DatasetError(f"validation {val} and test {test} leave no training samples of {size}")
    return size - nVal - nTest, nVal, nTest


def writeTrainingH5(out, data, labels, classNames=None, shuffle=False, seed=0, val=0.0, test=0.0, chunkRows=None,
                    channelsFirst=False):
    """Write data and labels in the layout train reads. shuffle: one random permutation (seed) of the
    samples before splitting; val, test: fractions split off (after training, in that order);
    chunkRows: rows per HDF5 chunk (default: about 1 MiB); channelsFirst: store (N, H, W, C) images
    as (N, C, H, W). Returns {split name: number of samples}."""
    if len(data) != len(labels):
        raise ShapeError(f"data has {len(data)} samples but labels has {len(labels)}")
    if channelsFirst:
        if data.ndim != 4:
            raise ShapeError(f"channelsFirst turns (N, H, W, C) images into (N, C, H, W); got shape {data.shape}")
        data = data.transpose(0, 3, 1, 2)
    order = numpy.random.default_rng(seed).permutation(len(data)) if shuffle else numpy.arange(len(data))
    sizes = splitSizes(len(data), val, test)
    rowBytes = max(1, data[:1].nbytes)
    rows = chunkRows or max(1, min(len(data), chunkBytes // rowBytes))
    written, start = {}, 0
    with serialize.atomicH5(out) as f:
        for prefix, size in zip(("", "val_", "test_"), sizes):
            if size == 0:
                continue
            part = order[start:start + size]
            start += size
            f.create_dataset(f"{prefix}data", data=numpy.ascontiguousarray(data[part]),
                             chunks=(min(rows, size),) + data.shape[1:])
            f.create_dataset(f"{prefix}labels", data=labels[part], chunks=(min(max(rows, 1024), size),))
            written[f"{prefix}data"] = size
        if classNames is not None:
            f.attrs["classNames"] = classNames
    return written
