"""Files written atomically (HDF5 and others): a crash mid-save never destroys the last good file."""
import contextlib
import json
import os
import re
import tempfile

import h5py
import numpy

from .errors import DatasetError

umask = os.umask(0o022)
os.umask(umask)  # read once, at import: os.umask can only be read by setting it


@contextlib.contextmanager
def atomicFile(path):
    """Yield a temporary path beside path to write the file at; on success the file is fsynced and renamed
    over path, on failure it is removed and path is untouched.

    A process killed mid-save (SIGKILL, power loss) leaves path as it was plus a stray temporary
    ``NAME.PID.XXXXXXXX.tmp``; the next successful save of the same path removes the strays of
    processes that no longer run. A write that fails (disk full, read-only folder) raises OSError
    naming path, with the errno of the cause."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{name}.{os.getpid()}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the file gets the usual permissions
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        syncFolder(folder)
    except OSError as e:
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}; "
                               "the file there (if any) is unchanged") from e
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    with contextlib.suppress(OSError):  # tidying up after others is no reason to fail this save
        removeStaleTemps(folder, name)


@contextlib.contextmanager
def atomicH5(path):
    """Yield an h5py.File open for writing, written atomically as atomicFile writes."""
    with atomicFile(path) as tmp, h5py.File(tmp, "w") as f:
        yield f


def writeAtomically(path, data):
    """Write bytes to path atomically (atomicFile)."""
    with atomicFile(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def syncFolder(folder):
    """fsync a folder so a rename in it survives a power loss. Best effort: the rename is done by now,
    and some systems cannot sync folders (Windows cannot even open them)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def removeStaleTemps(folder, name):
    """Delete temporaries atomicH5 left for name in folder when killed mid-save: those whose writing
    process is gone. A live writer's temporary (another process saving the same path) is kept."""
    if os.name != "posix":  # os.kill(pid, 0) is a liveness probe only on POSIX
        return
    pattern = re.compile(re.escape(name) + r"\.(\d+)\.[^.]+\.tmp")
    for entry in os.listdir(folder):
        found = pattern.fullmatch(entry)
        if found is None or int(found.group(1)) == os.getpid() or processAlive(int(found.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, entry))


def processAlive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def checkWritable(folder, what):
    """Prove that files can be written in folder (a temporary file is created and removed, and so are
    the missing folders made for it), so a read-only or impossible output place fails before
    training, not after it, and the check leaves the disk as it was. what names the option the folder
    came from, for the message."""
    folder = os.path.abspath(os.fspath(folder) or ".")
    missing = []
    parent = folder
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".macrobatch-write-check.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OSError(e.errno, f"{what} {folder} is not a writable folder: {e.strerror or e}") from e
    finally:
        for made in missing:
            with contextlib.suppress(OSError):
                os.rmdir(made)


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
