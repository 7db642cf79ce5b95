"""HDF5 files written atomically: a crash mid-save never destroys the last good file."""
import contextlib
import json
import os
import tempfile

import h5py
import numpy

from .errors import DatasetError


@contextlib.contextmanager
def atomicH5(path):
    """Yield an h5py.File open for writing at a temporary name beside path; on success the file
    is flushed, fsynced and renamed over path, on failure it is removed and path is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def openH5(path):
    """Open an HDF5 file for reading with an error that names the file when it is missing or not HDF5."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({e})") from e


def getDataset(f, name):
    """f[name] as an h5py Dataset, or a DatasetError listing what the file does hold."""
    if name not in f or not isinstance(f[name], h5py.Dataset):
        raise DatasetError(f"{f.filename}: no dataset {name!r}; it holds {sorted(f.keys())}")
    return f[name]


def writeState(group, state):
    """Store a nested state dict (the getState protocol) under an h5py group: arrays as datasets, dicts
    as subgroups, everything else (numbers, strings, lists, None) as JSON in an attribute. Groups keep
    creation order, so readState gives the keys back in their order."""
    for key, value in state.items():
        if isinstance(value, dict):
            writeState(group.create_group(key, track_order=True), value)
        elif isinstance(value, numpy.ndarray):
            group.create_dataset(key, data=value)
        else:
            group.attrs[key] = json.dumps(value)


def readState(group):
    """The nested state dict that writeState stored under group."""
    state = {key: json.loads(value) for key, value in group.attrs.items()}
    for key, item in group.items():
        state[key] = readState(item) if isinstance(item, h5py.Group) else item[()]
    return state
