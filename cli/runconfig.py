"""The train command's configuration, stored in every checkpoint so that --resume continues the same run.

RunConfig is a callback whose state is the configuration: Fit.getState saves it with the other
callbacks' state, and storedConfig reads it back from a checkpoint before any data is loaded."""
import os

from ..engine import serialize
from ..engine.errors import ModelFileError
from ..handlers.callbacks.callback import Callback

# the options a run is made of, and the target datasets it found in the file (targets, checked by
# checkTargets); paths are stored absolute, so a resume from another folder still matches
keys = ("data", "labels", "targets", "model", "batchsize", "macrobatch", "optimizer", "lr", "clip_norm", "accumulate",
        "schedule", "seed", "csv", "patience", "val_split", "sync_batchnorm", "reduce_dtype", "precision", "dp_clip",
        "dp_noise", "dp_epsilon", "dp_delta", "epochs", "out", "curve", "checkpoints", "checkpoint_macrobatches")
paths = {"data", "csv", "out", "curve", "checkpoints"}
# options a resumed run may change, well defined: where things are written, and how far to train
changeable = {"epochs", "out", "curve", "checkpoints", "checkpoint_macrobatches"}


def normalized(key, value):
    return os.path.abspath(value) if key in paths and value not in (None, "none") else value


def flag(key):
    return "--" + key.replace("_", "-")


class RunConfig(Callback):
    """Holds the command line's options; restored by Fit.resume like any callback's state."""

    def __init__(self, args):
        self.config = {key: normalized(key, getattr(args, key)) for key in keys}

    def getState(self):
        return {"runConfig": self.config}

    def setState(self, state):
        pass  # read before the run is built (storedConfig); the run's own options are already these


def storedConfig(path):
    """The train options stored in a checkpoint, or None for one written without them (the Python API)."""
    with serialize.openH5(path) as f:
        if "fit/callbacks" not in f:
            raise ModelFileError(f"{path}: not a macrobatch checkpoint")
        for state in serialize.readState(f["fit/callbacks"]).values():
            if isinstance(state, dict) and "runConfig" in state:
                return state["runConfig"]
    return None


def resumeConfig(args, given, path):
    """Take the run's options from the checkpoint at path into args, for every option the command did
    not give; a given one that contradicts the checkpoint is refused naming both values, unless the
    change is well defined (where to write, more epochs), which is returned as a note to print."""
    stored = storedConfig(path)
    if stored is None:
        return [f"{path} holds no run configuration (not written by macrobatch train): the options given now are used"]
    notes = []
    fixedEpochs = stored.get("schedule") in ("cosine", "step")  # these schedules are laid out over --epochs
    for key, old in stored.items():
        if key not in keys:
            continue
        now = getattr(args, key)
        if key not in given or normalized(key, now) == old:
            setattr(args, key, old)
        elif key in changeable and not (key == "epochs" and fixedEpochs):
            notes.append(f"{flag(key)} {now} instead of the checkpoint's {old}")
        else:
            why = f" (--schedule {stored['schedule']} is laid out over them)" if key == "epochs" else ""
            raise ModelFileError(f"--resume: {path} continues a run with {flag(key)} {old}, but this command gives "
                                 f"{flag(key)} {normalized(key, now)}{why}; leave {flag(key)} out to continue the "
                                 "run, or start a new run with another --checkpoints folder")
    return notes


def checkTargets(args, names, path):
    """Take the target datasets found in the file (names) into args, for RunConfig; refused where the run
    resumed from the checkpoint at path trained on others (args.targets, read back by resumeConfig)."""
    if args.targets is not None and args.targets != names:
        raise ModelFileError(f"--resume: {path} continues a run on the targets {args.targets}, but the data file now "
                             f"gives {names}; restore the file's target datasets (or name them: --labels), or "
                             "start a new run with another --checkpoints folder")
    args.targets = names
