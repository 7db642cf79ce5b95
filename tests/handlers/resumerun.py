"""Driver for test_fit's resume test, run in a fresh process: python resumerun.py MODE FOLDER OUT [PRECISION].

MODE straight trains 4 epochs; first trains 2 (checkpointing each epoch); resume continues the
second checkpoint in FOLDER to 4. The model has dropout and batch statistics, the learning rate a
warmup then a cosine schedule. OUT receives the final weights (the float32 masters under mixed precision),
statistics and history, and the loss scaler's state."""
import json
import sys

import numpy as np

from macrobatch.costs import CrossEntropy
from macrobatch.engine import setSeed, toHost
from macrobatch.handlers.callbacks import ModelCheckpoint
from macrobatch.handlers.fit import Fit
from macrobatch.modules import Activation, BatchNorm, Dropout, Linear, Sequential
from macrobatch.optimizers import Adam
from macrobatch.optimizers.schedules import CosineDecay, LinearWarmup

mode, folder, out = sys.argv[1:4]
precision = sys.argv[4] if len(sys.argv) > 4 else "float32"
rng = np.random.default_rng(0)
x = rng.standard_normal((300, 6)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
setSeed(1)
net = Sequential(Linear(6, 16), BatchNorm(16), Activation("relu"), Dropout(0.3), Linear(16, 3))
optimizer = Adam(learnRate=0.01)
optimizer.setupOn(net, precision=precision)
schedule = LinearWarmup(optimizer, warmupSteps=5, after=CosineDecay(None, totalSteps=60))
fit = Fit(net, CrossEntropy(), optimizer, batchsize=32, macroBatchSize=100, seed=7, schedule=schedule,
          callbacks=[ModelCheckpoint(folder, keepLast=None)])
if mode == "resume":
    fit.resume(f"{folder}/epoch-0002.h5")
fit.run(x, y, 2 if mode == "first" else 4, x[:100], y[:100])
np.savez(out, **{key.replace("/", ":"): toHost(ary) for key, ary in fit.modelState().items()})
with open(out + ".json", "w") as f:
    json.dump({key: values for key, values in fit.history.items() if key != "time"} |
              {"lossScaler": optimizer.getState().get("lossScaler")}, f)
