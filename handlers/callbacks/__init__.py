"""Callbacks for Fit: progress, logs, early stopping, checkpoints, curves."""
from .callback import Callback
from .csvlogger import CSVLogger
from .curveplot import CurvePlot
from .earlystopping import EarlyStopping
from .modelcheckpoint import ModelCheckpoint, latestCheckpoint
from .progressbar import ProgressBar
from .terminateonnan import TerminateOnNaN
