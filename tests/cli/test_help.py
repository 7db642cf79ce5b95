"""Help that states every default, lists every command, and the version; `python -m macrobatch`."""
import argparse
import re
import subprocess
import sys

import macrobatch
from macrobatch.cli import parser


def test_every_option_with_a_default_shows_it_in_help():
    for name, command in parser().commands.items():
        text = " ".join(command.format_help().split())  # argparse wraps lines
        for action in command._actions:
            if action.option_strings and action.default is not None and action.default is not False \
                    and action.default != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
                assert f"(default: {action.default})" in text, (name, action.dest)


def test_train_help_through_the_console_script_shows_the_defaults(cli):
    run = cli("train", "--help")
    text = " ".join(run.stdout.split())
    assert run.returncode == 0
    for default in ("(default: 15)", "(default: 32)", "(default: 10000)", "(default: adam)", "(default: runs/model.h5)",
                    "(default: cnn)", "(default: 0)", "the optimizer's own"):
        assert default in text, default


def test_top_level_help_lists_every_command_with_one_line(cli):
    run = cli("--help")
    assert run.returncode == 0
    for name in parser().commands:
        assert re.search(rf"^\s+{name}\s+\S", run.stdout, re.M), name


def test_version_and_python_dash_m(cli):
    run = cli("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"macrobatch {macrobatch.__version__}"
    legacy = subprocess.run([sys.executable, "-m", "macrobatch.cli", "--version"], capture_output=True, text=True)
    assert legacy.stdout == run.stdout


def test_epochs_zero_is_refused_by_the_parser(cli):
    run = cli("train", "--epochs", "0")
    assert run.returncode == 2 and "--epochs: must be a positive integer, got 0" in run.stderr, run.stderr
