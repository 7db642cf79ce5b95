"""Upload buffers live on the GPU the process chose, even though the reader thread allocates them: CUDA's
current device is per host thread, and a thread that never chose one is on GPU 0."""
import os
import subprocess
import sys

import pytest

SCRIPT = """
import numpy as np
from macrobatch.engine import backend
from macrobatch.costs import CrossEntropy
from macrobatch.handlers import Trainer
from macrobatch.modules import Linear
from macrobatch.optimizers import SGD

xp = backend.xp
if xp.cuda.runtime.getDeviceCount() < 2:
    print("devices", xp.cuda.runtime.getDeviceCount())
    raise SystemExit(0)
net = Linear(4, 3)
optimizer = SGD(learnRate=0.1)
optimizer.setupOn(net)
trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=5)
seen = set()
handleBatch = trainer.handleBatch
trainer.handleBatch = lambda batch, idx, state: seen.add(batch[0].device.id) or handleBatch(batch, idx, state)
data, labels = np.zeros((40, 4), np.float32), np.zeros(40, np.int32)
trainer.trainFromHost(data, labels, macroBatchSize=10, random=False)  # batches are views of the upload buffers
print("process", xp.cuda.Device().id, "batches", sorted(seen))
"""


@pytest.mark.cuda
def test_upload_buffers_are_on_the_device_of_the_process_local_rank():
    # local rank 1 of an MPI job picks GPU 1 (backend.localRank); cudasim emulates two GPUs, a real machine
    # needs them
    env = {**os.environ, "OMPI_COMM_WORLD_LOCAL_RANK": "1", "CUDASIM_DEVICES": "2"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    if out.stdout.startswith("devices"):
        pytest.skip(f"needs two CUDA devices, this machine has {out.stdout.split()[1]}")
    assert out.stdout.split() == ["process", "1", "batches", "[1]"]
