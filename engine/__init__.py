"""The core every other package builds on: backend choice, Variable, dtypes, seeding, HDF5 files."""
from . import backend, random
from .backend import BackendError, isCuda, synchronize, toDevice, toHost, xp
from .dtype import defaultDtype
from .errors import (DatasetError, DtypeError, LabelError, MacrobatchError, ModelFileError, NonFiniteError,
                     ShapeError)
from .random import setSeed
from .variable import Variable
