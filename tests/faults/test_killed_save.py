"""A process killed (SIGKILL) while it writes a model file or a checkpoint leaves the previous file whole.

A child process saves over one path again and again, each version with every weight equal to its
version number, and reports each finished save; the test kills it at random moments. After every kill
the file at the path must load and hold one complete version: one reported, or the one whose rename
had happened but not yet been reported. Stray temporaries of the killed writers may remain beside it;
the next successful save of the path removes them."""
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.engine import serialize
from macrobatch.handlers.callbacks import latestCheckpoint
from macrobatch.handlers.fit import Fit
from macrobatch.modules.linear import Linear
from macrobatch.modules.module import loadModel
from macrobatch.modules.sequential import Sequential
from macrobatch.optimizers.sgd import SGD

# 2 x 1024 x 2048 float32 weights: a 16 MiB file, so most of the writer's time is spent mid-save
writer = """
import sys
from macrobatch.costs.crossentropy import CrossEntropy
from macrobatch.handlers.fit import Fit
from macrobatch.modules.linear import Linear
from macrobatch.modules.sequential import Sequential
from macrobatch.optimizers.sgd import SGD

mode, path = sys.argv[1:3]
net = Sequential(Linear(1024, 2048), Linear(2048, 1024))
optimizer = SGD()
optimizer.setupOn(net)
fit = Fit(net, CrossEntropy(), optimizer, seed=0)
version = 0
while True:
    version += 1
    for var in net.getVariables().values():
        var.data[...] = version
    if mode == "model":
        net.save(path)
    else:
        fit.epoch = version
        fit.saveCheckpoint(path)
    print(version, flush=True)
"""


def bigNet():
    return Sequential(Linear(1024, 2048), Linear(2048, 1024))


def loadVersion(mode, path):
    """The version number the file at path holds, after checking that every weight agrees."""
    if mode == "model":
        net = loadModel(path)
    else:
        net = bigNet()
        optimizer = SGD()
        optimizer.setupOn(net)
        fit = Fit(net, CrossEntropy(), optimizer).resume(path)
    values = {float(v) for var in net.getVariables().values() for v in np.unique(var.data)}
    assert len(values) == 1, f"{path} mixes versions {sorted(values)}"
    version = int(values.pop())
    if mode == "checkpoint":
        assert fit.epoch == version, f"{path}: epoch {fit.epoch} beside weights of version {version}"
    return version


def strays(folder, name):
    return sorted(p for p in os.listdir(folder) if p != name)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["model", "checkpoint"])
def test_sigkill_mid_save_leaves_the_previous_file_loadable_and_whole(tmp_path, mode):
    name = "epoch-0001.h5" if mode == "checkpoint" else "model.h5"
    path = tmp_path / name
    rng = random.Random(7)
    kills, midSave, last = 6, 0, 0
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", writer, mode, str(path)], stdout=subprocess.PIPE, text=True)
        reported = int(child.stdout.readline())  # one whole save of this child exists
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()  # reaped: its pid no longer counts as a live writer
        reported = max([reported] + [int(line) for line in child.stdout.read().split()])
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        version = loadVersion(mode, path)
        assert version in (reported, reported + 1), f"holds version {version}, last reported {reported}"
        left = strays(tmp_path, name)
        assert all(re.fullmatch(re.escape(name) + r"\.\d+\.[^.]+\.tmp", p) for p in left), left
        midSave += len(left) > 0
        last = version
    if mode == "checkpoint":
        assert latestCheckpoint(tmp_path) == str(path)  # a stray temporary is never taken for a checkpoint
    assert midSave >= 1, "no kill landed mid-save; the test proved nothing"
    net = bigNet()
    for var in net.getVariables().values():
        var.data[...] = last + 100
    net.save(path)
    assert strays(tmp_path, name) == [] and loadVersion("model", path) == last + 100


def test_a_save_keeps_the_temporary_of_a_live_writer_and_of_other_names(tmp_path):
    alive = tmp_path / f"m.h5.{os.getppid()}.abcdefgh.tmp"
    other = tmp_path / "n.h5.999999999.abcdefgh.tmp"
    alive.write_bytes(b"partial")
    other.write_bytes(b"partial")
    with serialize.atomicH5(tmp_path / "m.h5") as f:
        f["x"] = np.arange(3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.h5", alive.name, other.name])
