"""Argument types and the help formatter shared by the subcommands."""
import argparse


def positiveInt(text):
    """An integer above 0 (--epochs, --batchsize, ...): 0 would train or read nothing."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def nonNegativeInt(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def fraction(text):
    """A share of the samples, strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text}")
    return value


def fractionOrZero(text):
    """A share of the samples to split off, 0 for none."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text}")
    return value


def macroBatchArg(text):
    """--macrobatch: a count of samples, or 'auto'."""
    return text if text == "auto" else positiveInt(text)


class HelpFormatter(argparse.HelpFormatter):
    """Every option's default in its help line, where it has one worth stating (not None or off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default is None or default is False or default == argparse.SUPPRESS
                or not action.option_strings
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"
