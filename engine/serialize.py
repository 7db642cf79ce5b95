"""HDF5 files written atomically: a crash mid-save never destroys the last good file."""
import contextlib
import os
import tempfile

import h5py

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
