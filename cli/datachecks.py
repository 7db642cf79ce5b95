"""Checks of a training file before anything trains, each failing with what is wrong and how to fix it."""
from ..datasets.labelstats import labelStats
from ..engine.errors import LabelError, ShapeError

channelCounts = (1, 3, 4)  # grey, RGB, RGBA: what a channel axis of an image file holds
sparseLabels = 10  # a label range this much wider than the classes that occur is a coding, not classes


def checkShapes(data, splits):
    """Validation and test samples shaped like the training ones. splits: {name: data array}."""
    for name, ary in splits.items():
        if tuple(ary.shape[1:]) != tuple(data.shape[1:]):
            raise ShapeError(f"{name} holds samples of shape {tuple(ary.shape[1:])}, but the training data's are "
                             f"{tuple(data.shape[1:])}; they must match")


def checkImages(shape):
    """A per-sample shape the CNN can take: (C, H, W), channels first, at least 4x4."""
    if len(shape) != 3:
        raise ShapeError(f"--model cnn needs image data of shape (N, C, H, W); got samples of shape {tuple(shape)}"
                         "; use --model mlp")
    channels, height, width = shape
    if width in channelCounts and channels not in channelCounts:
        raise ShapeError(f"--model cnn takes images channels first, (N, C, H, W); the samples are {tuple(shape)}, "
                         f"which looks channels last (N, H, W, C). Transpose them: numpy.transpose(images, "
                         "(0, 3, 1, 2)), or macrobatch convert FILE --channels-first --out new.h5")
    if height < 4 or width < 4:
        raise ShapeError(f"--model cnn needs images of at least 4x4 pixels, got {height}x{width} (samples "
                         f"{tuple(shape)}, read as (C, H, W)); use --model mlp")


def checkLabels(labels, splits, name="labels"):
    """The class count for labels (the target called name) and the split labels ({split name: labels});
    refuses labels that are not class indices, a label range far wider than the classes that occur, and
    split classes never seen in training. Returns (classes, notes): notes are warnings to print (labels in
    long runs of one class)."""
    train = labelStats(labels, name)
    stats = {split: labelStats(ary, split) for split, ary in splits.items()}
    occurring = set(train.counts)
    classes = 1 + max(max(s.counts, default=0) for s in (train, *stats.values()))
    if classes > 2 * len(occurring) and classes - len(occurring) >= sparseLabels:
        shown = sorted(occurring)[:10]
        raise LabelError(f"{name} range over 0..{classes - 1}, which makes {classes} classes, but only "
                         f"{len(occurring)} occur ({shown}{' ...' if len(occurring) > 10 else ''}); map them to "
                         "0..K-1: numpy.unique(labels, return_inverse=True)[1]")
    for split, s in stats.items():
        unseen = sorted(set(s.counts) - occurring)
        if unseen:
            count = sum(s.counts[k] for k in unseen)
            sortedHint = " (is the file sorted by class and split at the end?)" if train.isSorted else ""
            raise LabelError(f"{split} holds classes that never occur in training: {unseen[:10]}"
                             f"{' ...' if len(unseen) > 10 else ''} ({count} samples); the model cannot learn "
                             f"them{sortedHint}. Make the splits from shuffled data: macrobatch convert FILE "
                             "--shuffle --val 0.1 --test 0.1 --out new.h5")
    notes = [train.sortedNote(f"the training {name}")] if train.isSorted else []
    return classes, notes
