"""Argument checks shared across the packages."""
import math
import numbers


def checkPositiveInt(value, name):
    """value as an int, or a ValueError naming the argument unless it is a positive integer (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def checkHyper(owner, name, value, low=0.0, high=math.inf, lowOpen=False):
    """A hyperparameter of owner as a Python float (so NumPy math on float32 buffers stays float32), or a
    ValueError naming owner's class unless low <= value < high (low < value when lowOpen). Classes take it as
    a method: ``checkHyper = checkHyper``."""
    value = float(value)
    if not ((low < value if lowOpen else low <= value) and value < high):
        bounds = (f"{'>' if lowOpen else '>='} {low:g}" if high == math.inf
                  else f"in {'(' if lowOpen else '['}{low:g}, {high:g})")
        raise ValueError(f"{type(owner).__name__}: {name} must be {bounds}, got {value}")
    return value
