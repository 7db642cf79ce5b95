"""The example scripts run as a user would run them, and each one's training loss clearly decreases."""
import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.mark.slow
@pytest.mark.parametrize("script", ["conv1d.py", "lstm_classifier.py", "resnet.py"])
def test_example_trains_with_a_clear_loss_decrease(script, tmp_path):
    child = subprocess.run([sys.executable, os.path.join(EXAMPLES, script)], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    losses = [float(v) for v in re.findall(r"(?:loss|to) (\d+\.\d+)", child.stdout)]
    first, last = losses[0], losses[-1]
    assert last < 0.5 * first, child.stdout
    assert os.listdir(tmp_path) == []  # examples leave nothing behind in the working folder
