"""The targets of a training file: 'labels', 'labels_1', ... (or the datasets --labels names), with their
validation and test splits ('val_labels', 'test_labels_1', ...), each checked under its own name and made
a model head: integer class indices a classifier, float values (a file of several targets) a regression."""
from ..datasets.rows import Rows
from ..engine import serialize
from ..engine.errors import DatasetError, ShapeError
from .datachecks import checkLabels


def targetNames(f, given):
    """The names --labels gives (comma-separated, each in the file), or 'labels', 'labels_1', 'labels_2', ...
    up to the first number the file lacks."""
    if given is None:
        names = ["labels"]
        while f"labels_{len(names)}" in f:
            names.append(f"labels_{len(names)}")
    else:
        names = given.split(",")
        if "" in names or len(set(names)) != len(names):
            raise DatasetError(f"--labels {given}: give the target datasets' names once each, separated by commas")
    for name in names:
        serialize.getDataset(f, name)
    return names


def splitOf(f, prefix, names):
    """The (prefix_data, [prefix_NAME, ...]) datasets, or None where the file has none of them; a split with
    some but not all of them is refused naming what is missing."""
    wanted = [f"{prefix}_data"] + [f"{prefix}_{name}" for name in names]
    held = [key for key in wanted if key in f]
    if not held:
        return None
    if len(held) < len(wanted):
        missing = [key for key in wanted if key not in f]
        raise DatasetError(f"{f.filename}: {held} without {missing}; '{prefix}_data' goes with one dataset per "
                           f"target ({wanted[1:]}); it holds {sorted(f.keys())}")
    return [serialize.getDataset(f, key) for key in wanted]


def readSplits(f, data, names, valSplit):
    """{split: [data, target, ...]} for 'training' and, where present, 'val' and 'test'; with valSplit,
    validation is the file's last valSplit of samples (the contiguous tail: a read at trainFromHost's speed;
    shuffle a sorted file first). Every target holds as many samples as its split's data."""
    found = {"training": [data] + [f[name] for name in names]}
    found.update((prefix, split) for prefix in ("val", "test") if (split := splitOf(f, prefix, names)))
    for prefix, split in found.items():
        for ary, name in zip(split[1:], names):
            if ary.shape[0] != split[0].shape[0]:
                key, dataKey = (name, "data") if prefix == "training" else (f"{prefix}_{name}", f"{prefix}_data")
                raise ShapeError(f"{key} holds {ary.shape[0]} samples, but {dataKey} holds {split[0].shape[0]}; "
                                 "every target needs one entry per sample")
    if valSplit:
        if "val" in found:
            raise DatasetError(f"{f.filename} already holds 'val_data'; drop --val-split")
        size = data.shape[0]
        cut = size - max(1, round(size * valSplit))
        if cut < 1:
            raise DatasetError(f"--val-split {valSplit} leaves no training samples of {size}")
        whole = found["training"]
        found["training"], found["val"] = [Rows(a, 0, cut) for a in whole], [Rows(a, cut, size) for a in whole]
    return found


def targetHeads(names, found):
    """(heads, notes): (name, classes, None) for a class target, (name, None, per-sample shape) for a float
    one (only beside other targets: a single target is a classifier's labels), and the warnings to print."""
    heads, notes = [], []
    for i, name in enumerate(names):
        splits = {f"{prefix}_{name}": split[1 + i] for prefix, split in found.items() if prefix != "training"}
        target = found["training"][1 + i]
        if len(names) > 1 and target.dtype.kind == "f":
            for key, ary in splits.items():
                if tuple(ary.shape[1:]) != tuple(target.shape[1:]):
                    raise ShapeError(f"{key} holds values of shape {tuple(ary.shape[1:])}, but {name}'s are "
                                     f"{tuple(target.shape[1:])}; they must match")
            heads.append((name, None, tuple(target.shape[1:])))
        else:
            classes, warnings = checkLabels(target, splits, name)
            heads.append((name, classes, None))
            notes += warnings
    return heads, notes


def describeHeads(heads):
    """'0: labels (10 classes), 1: age (regression), 2: box (regression of shape (4,))', numbered as the
    figures Multi reports ('0.accuracy', '1.error', ...)."""
    return ", ".join(f"{i}: {name} (" + (f"{classes} classes" if classes else "regression" +
                                         (f" of shape {shape}" if shape else "")) + ")"
                     for i, (name, classes, shape) in enumerate(heads))
