"""macroBatchSize="auto": the largest macrobatch whose buffers fit beside one batch of the model's work, in free
device memory (RAM on the CPU), said aloud; worked out once per handler for the same data."""
import os
import subprocess
import sys

import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.engine import backend, setSeed, toHost
from macrobatch.engine.errors import DeviceMemoryError
from macrobatch.handlers import Calculator, Trainer, macrobatchsize
from macrobatch.modules import Activation, Conv2D, Flatten, Linear, MaxPool2D, Sequential
from macrobatch.optimizers import Adam


def cnn():
    setSeed(0)
    net = Sequential(Conv2D(1, 4, 3, pad=1), Activation("relu"), MaxPool2D(2), Flatten(), Linear(4 * 8 * 8, 10))
    optimizer = Adam()
    optimizer.setupOn(net)
    return net, optimizer


def images(n):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 16, 16)).astype(np.float32), rng.integers(0, 10, n)


def test_auto_size_is_whole_batches_whose_buffers_and_one_batch_of_work_fit_in_the_planned_share(monkeypatch):
    net, _ = cnn()
    data, labels = images(100000)
    free = 50 * 2 ** 20
    monkeypatch.setattr(macrobatchsize, "freeMemoryBytes", lambda: free)
    said = []
    size = macrobatchsize.autoMacroBatchSize(net, 32, np.float32, data, labels, say=said.append)
    sampleBytes = 16 * 16 * 4 + 8  # float32 pixels and a label of at most 8 bytes
    copies = 2 if backend.isCuda else 3
    work = macrobatchsize.batchWorkBytes(net, (32, 1, 16, 16), np.float32)
    budget = macrobatchsize.safety * (free + macrobatchsize._pooledFreeBytes()) - work - 32 * sampleBytes
    assert size % 32 == 0 and size * copies * sampleBytes <= budget < (size + 32) * copies * sampleBytes
    assert said == [f"macrobatch: macroBatchSize auto = {size} samples: " + said[0].split(" samples: ")[1]]
    assert f"{copies} buffers of {sampleBytes} bytes per sample" in said[0]


def test_the_dry_forward_counts_every_layer_output_and_leaves_modes_and_statistics_alone():
    net, _ = cnn()
    net[1].evalMode()  # a mixed mode is restored as it was
    before = {k: toHost(v.data).copy() for k, v in net.getVariables().items()}
    work = macrobatchsize.batchWorkBytes(net, (10, 1, 16, 16), np.float32)
    outputs = 4 * 10 * (4 * 16 * 16 * 2 + 4 * 8 * 8 * 2 + 10)  # conv, relu, pool, flatten, linear
    assert work == macrobatchsize.workFactor * outputs + 10 * 16 * 16 * 4
    assert [m.train for _, m in net.namedModules()] == [True, True, False, True, True, True]
    assert all(m.data is None for _, m in net.namedModules())  # the dry run's activations are released
    assert all(np.array_equal(toHost(v.data), before[k]) for k, v in net.getVariables().items())


def test_small_data_is_taken_whole_and_the_choice_is_made_once_per_handler(capsys):
    net, optimizer = cnn()
    data, labels = images(300)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=64)
    for _ in range(2):
        trainer.trainFromHost(data, labels, macroBatchSize="auto")
    assert trainer.totalMacroBatches == 1
    said = capsys.readouterr().out.splitlines()
    assert said == [line for line in said if "macroBatchSize auto = 300 samples (all of the data)" in line] and len(said) == 1
    out = Calculator(net, batchsize=64).calcFromHost(data, macroBatchSize="auto")
    assert out.shape == (300, 10)


def test_not_one_batch_fitting_is_a_device_memory_error_naming_the_sizes(monkeypatch):
    net, _ = cnn()
    data, labels = images(1000)
    monkeypatch.setattr(macrobatchsize, "freeMemoryBytes", lambda: 10 ** 5)
    with pytest.raises(DeviceMemoryError, match=r"macroBatchSize auto: not even one batch of 64 fits"):
        macrobatchsize.autoMacroBatchSize(net, 64, np.float32, data, labels, say=None)


def test_a_size_that_is_neither_a_count_nor_auto_is_refused():
    net, optimizer = cnn()
    data, labels = images(100)
    with pytest.raises(ValueError, match="macroBatchSize must be a positive integer, got 'big'"):
        Trainer(net, CrossEntropy(), optimizer, batchsize=10).trainFromHost(data, labels, macroBatchSize="big")


SCRIPT = """
import numpy as np
from macrobatch.engine import backend, setSeed
from macrobatch.engine.errors import DeviceMemoryError
from macrobatch.costs import CrossEntropy
from macrobatch.handlers import Trainer
from macrobatch.modules import Activation, Conv2D, Flatten, Linear, MaxPool2D, Sequential
from macrobatch.optimizers import Adam

if backend.xp.cuda.runtime.memGetInfo()[1] != 48 * 2 ** 20:
    raise SystemExit("not cudasim")
setSeed(0)
net = Sequential(Conv2D(1, 8, 3, pad=1), Activation("relu"), MaxPool2D(2), Flatten(), Linear(8 * 14 * 14, 10))
optimizer = Adam()
optimizer.setupOn(net)
data = np.random.default_rng(0).standard_normal((16000, 1, 28, 28)).astype(np.float32)  # 48 MiB
labels = np.zeros(16000, np.int64)
trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=128)
for size in (16000, 8000):  # one buffer is the whole device; one fits, but leaves too little for the rest
    try:
        trainer.trainFromHost(data, labels, macroBatchSize=size)
    except DeviceMemoryError as error:
        print(size, "DeviceMemoryError:", str(error)[:60])
trainer.trainFromHost(data, labels, macroBatchSize="auto")
print("auto trained in", trainer.totalMacroBatches, "macrobatches")
"""


@pytest.mark.cuda
def test_auto_trains_within_a_small_device_where_a_fixed_size_does_not_fit():
    env = {**os.environ, "CUDASIM_DEVICE_BYTES": str(48 * 2 ** 20)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    if "not cudasim" in out.stderr:
        pytest.skip("sets the device's capacity through cudasim (CUDASIM_DEVICE_BYTES)")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("16000 DeviceMemoryError: macroBatchSize 16000 does not fit in device memory")
    # 8000 uploads one macrobatch, then runs out in a batch or, with a leaner batch, at the second upload
    assert lines[1].startswith("8000 DeviceMemoryError:")
    assert "ran out in a batch of 128 samples" in lines[1] or "does not fit in device memory" in lines[1]
    assert lines[-1].startswith("auto trained in")
    assert int(lines[-1].split()[3]) > 1
