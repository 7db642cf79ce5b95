"""Argument checks shared across the packages."""
import numbers


def checkPositiveInt(value, name):
    """value as an int, or a ValueError naming the argument unless it is a positive integer (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
