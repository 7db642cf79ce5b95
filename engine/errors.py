"""Errors the engine raises; each message names the problem and where it was found."""


class MacrobatchError(Exception):
    """Base of every error the engine raises on purpose."""


class ShapeError(MacrobatchError, ValueError):
    """An array's shape does not fit where it is used."""


class DtypeError(MacrobatchError, TypeError):
    """An array's dtype cannot be used where it is given."""


class LabelError(MacrobatchError, ValueError):
    """Targets that a cost cannot take: out of range, negative, fractional."""


class DatasetError(MacrobatchError, KeyError):
    """A dataset (HDF5 name, file, length) is missing or inconsistent."""

    def __str__(self):  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class NonFiniteError(MacrobatchError, FloatingPointError):
    """NaN or Inf appeared in a loss or in data."""


class ReadError(MacrobatchError, OSError):
    """Stored data could not be read (a truncated or corrupt file); the message names the file and samples."""


class ModelFileError(MacrobatchError, ValueError):
    """A model file does not match the model it is loaded into."""


class DeviceMemoryError(MacrobatchError, MemoryError):
    """A macrobatch does not fit in the free device memory; the message says what size would."""


class ConversionError(MacrobatchError, ValueError):
    """A module, an option of one or an operator has no exact counterpart in the format a model is converted
    to or from (ONNX); the message names it and says why."""


class PerSampleError(MacrobatchError, ValueError):
    """Per-sample gradients are undefined or unsupported for a module or a cost (it mixes samples, or has
    no per-sample rule); the message names it and says what to use instead."""
