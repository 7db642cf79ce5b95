"""Driver for test_larger_than_memory, run in a fresh process:
python streamrun.py FILE MACROBATCHSIZE BUDGETBYTES.

Warms up (imports, one small trainFromHost, so libraries, the reader thread and its malloc arena are
mapped), then caps its own address space (RLIMIT_AS) at what it maps now plus BUDGETBYTES, checks that
the cap binds (the whole file cannot even be allocated), and trains one epoch over FILE's ``data`` and
``labels``. Prints one JSON line: the limit, baseline and peak memory (bytes) and what was trained."""
import json
import resource
import sys
import time

import h5py
import numpy as np

from macrobatch.costs import CrossEntropy
from macrobatch.handlers import Trainer
from macrobatch.modules import Linear, Sequential
from macrobatch.optimizers import SGD


def status(key):
    """A memory figure of this process from /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(key + ":"))
    return int(line.split()[1]) * 1024


path, macroBatchSize, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with h5py.File(path, "r") as f:
    samples, features = f["data"].shape
    fileBytes = f["data"].nbytes + f["labels"].nbytes
net = Sequential(Linear(features, 4))
optimizer = SGD(learnRate=0.01)
optimizer.setupOn(net)
seen = []  # the size of every batch trained
trainer = Trainer(net, CrossEntropy(), optimizer, onBatchFinish=lambda t: seen.append(t.state["size"]), batchsize=1024)
trainer.trainFromHost(np.zeros((2048, features), np.float32), np.zeros(2048, np.int64), macroBatchSize=1024)
seen.clear()

baseline = {"VmSize": status("VmSize"), "VmHWM": status("VmHWM")}
limit = baseline["VmSize"] + budget
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    np.empty(fileBytes, np.uint8)
    capBinds = False
except MemoryError:
    capBinds = True

start = time.perf_counter()
with h5py.File(path, "r") as f:
    trainer.trainFromHost(f["data"], f["labels"], macroBatchSize=macroBatchSize)
print(json.dumps({"limit": limit, "fileBytes": fileBytes, "capBinds": capBinds, "baseline": baseline,
                  "VmHWM": status("VmHWM"), "VmPeak": status("VmPeak"), "samples": samples,
                  "seen": sum(seen), "batches": len(seen), "loss": trainer.cost.getError(),
                  "seconds": time.perf_counter() - start}))
