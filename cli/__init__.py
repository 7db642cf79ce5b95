"""The macrobatch command line: the parser and main; one module per subcommand."""
import argparse
import sys

from .. import __version__
from ..engine.errors import MacrobatchError
from . import convert, export, importonnx, inspect, predict, quantize, summary, train
from .arguments import HelpFormatter


def parser():
    p = argparse.ArgumentParser(prog="macrobatch", formatter_class=HelpFormatter,
                                description="Train a classifier on an HDF5 file, predict with a saved model, "
                                            "summarise a model, inspect a dataset, convert data into the layout "
                                            "train reads, export a model to ONNX or import one, quantize a model to "
                                            "float16 or int8.")
    p.add_argument("--version", action="version", version=f"macrobatch {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           title="commands (macrobatch COMMAND --help for each one's options)")
    p.commands = {}
    for command in (train, predict, summary, inspect, convert, export, importonnx, quantize):
        each = command.addParser(sub)
        each.formatter_class = HelpFormatter
        p.commands[each.prog.split()[-1]] = each
    return p


def givenOptions(command, argv):
    """The destinations of the options written out on the command line (not left at their defaults);
    the subcommands take no abbreviated options, so each is spelled in full."""
    written = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
    return {action.dest for action in command._actions if written & set(action.option_strings)}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = parser()
    args = p.parse_args(argv)
    args.given = givenOptions(p.commands[args.command], argv)
    try:
        args.run(args)
    except (MacrobatchError, FileNotFoundError, ValueError, OSError, ImportError) as e:
        print(f"macrobatch: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"macrobatch: interrupted{': ' if str(e) else ''}{e}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a Ctrl-C
    return 0
