"""LossScaler: dynamic loss scaling for float16 training, with torch.amp.GradScaler's semantics."""
import numpy as np

from ..engine.backend import checkOnDevice, isCuda, xp
from ..engine.checks import checkHyper, checkPositiveInt
from ..engine.errors import DtypeError, ModelFileError, ShapeError
from ..engine.kernels import ElementwiseKernel


class LossScaler:
    """Scales the loss gradient up so that small float16 gradients do not flush to zero, unscales the
    parameter gradients before the update, and adapts the scale as torch.amp.GradScaler does: a step
    whose gradients hold Inf or NaN is skipped and multiplies the scale by backoffFactor; after
    growthInterval finite steps in a row the scale is multiplied by growthFactor (unless that
    overflows float32).

    State lives on the device, so a training step never waits for it: ``scale`` (0-d float32),
    ``growthTracker`` (0-d int32: finite steps since the scale last changed) and ``skippedSteps`` (0-d
    int64; ``int(scaler.skippedSteps)`` reads it, waiting for the device). One step is::

        grad = cost's gradient * scaler.lossScale()       # then backward
        finite = scaler.unscaleAndCheck(optimizer.gradArrays())
        ... update the weights unless finite is false ...
        scaler.update(finite)

    initScale: in (0, float32 max); growthFactor > 1; backoffFactor in (0, 1); growthInterval: a positive
    integer. enabled=False makes the scaler a no-op (scale 1, gradients untouched, every step taken),
    as torch's enabled=False.
    """

    checkHyper = checkHyper
    dtypes = (np.dtype(np.float16), np.dtype(np.float32))

    # As torch's _amp_foreach_non_finite_check_and_unscale_: the check looks at the scaled value,
    # 1 / scale is taken in double and rounded to float, the product is taken in float. Threads that
    # find a non-finite value all write the same false, so the race is harmless.
    unscaleKernel = ElementwiseKernel(
        "float32 scale", "T grad, raw bool finite",
        "float value = (float)grad;"
        "if (!isfinite(value)) finite[0] = false;"
        "grad = (T)(value * (float)(1.0 / (double)scale));",
        "macrobatch_loss_unscale")

    # torch's _amp_update_scale_, plus the count of skipped steps.
    updateKernel = ElementwiseKernel(
        "bool finite, float64 growthFactor, float64 backoffFactor, int32 growthInterval",
        "float32 scale, int32 tracker, int64 skipped",
        "if (!finite) {"
        "  scale = (float)(scale * backoffFactor); tracker = 0; skipped += 1;"
        "} else if (tracker + 1 == growthInterval) {"
        "  float grown = (float)(scale * growthFactor);"
        "  if (isfinite(grown)) scale = grown;"
        "  tracker = 0;"
        "} else {"
        "  tracker += 1;"
        "}",
        "macrobatch_loss_scale_update")

    def __init__(self, initScale=2.0 ** 16, growthFactor=2.0, backoffFactor=0.5, growthInterval=2000,
                 enabled=True):
        initScale = self.checkScale(initScale)
        self.growthFactor = self.checkHyper("growthFactor", growthFactor, low=1.0, lowOpen=True)
        self.backoffFactor = self.checkHyper("backoffFactor", backoffFactor, high=1.0, lowOpen=True)
        self.growthInterval = checkPositiveInt(growthInterval, "LossScaler: growthInterval")
        if not isinstance(enabled, (bool, np.bool_)):
            raise TypeError(f"LossScaler: enabled must be True or False, got {enabled!r}")
        self.enabled = bool(enabled)
        self.scale = xp.full((), initScale if self.enabled else 1.0, dtype=xp.float32)
        self.growthTracker = xp.zeros((), dtype=xp.int32)
        self.skippedSteps = xp.zeros((), dtype=xp.int64)

    @staticmethod
    def checkScale(value):
        """value as a float, or ValueError unless it is a positive finite float32 (a scale of 0 or Inf
        never recovers)."""
        value = float(value)
        if not 0.0 < value <= float(np.finfo(np.float32).max):
            raise ValueError(f"LossScaler: the scale must be a positive finite float32, got {value}")
        return value

    def lossScale(self):
        """The device scalar (0-d float32) to multiply the loss gradient by before backward; update
        changes it in place."""
        return self.scale

    def unscaleAndCheck(self, gradArrays):
        """Multiply every gradient array (float16 or float32, on the device) by 1 / scale in place, and
        return a 0-d device bool: whether all of them were finite. Nothing is read back to the host."""
        for grad in gradArrays:
            checkOnDevice(grad, "LossScaler.unscaleAndCheck")
            if grad.dtype not in self.dtypes:
                raise DtypeError(f"LossScaler.unscaleAndCheck: gradients must be float16 or float32, got {grad.dtype}")
        finite = xp.ones((), dtype=bool)
        if not self.enabled:
            return finite
        if isCuda:
            for grad in gradArrays:
                self.unscaleKernel(self.scale, grad, finite)
            return finite
        inverse = np.float32(1.0 / float(self.scale))
        for grad in gradArrays:
            finite &= np.isfinite(grad).all()
            grad *= inverse
        return finite

    def update(self, finite):
        """Adapt the scale to this step's unscaleAndCheck result (a 0-d device bool), on the device:
        back off, reset the tracker and count a skipped step when it is false; otherwise count the
        finite step and grow the scale when growthInterval of them came in a row."""
        checkOnDevice(finite, "LossScaler.update")
        if finite.dtype != bool:
            raise DtypeError(f"LossScaler.update: expected unscaleAndCheck's bool, got {finite.dtype}")
        if finite.shape != ():
            raise ShapeError(f"LossScaler.update: expected unscaleAndCheck's 0-d bool, got shape {finite.shape}")
        if not self.enabled:
            return
        if isCuda:
            self.updateKernel(finite, self.growthFactor, self.backoffFactor, self.growthInterval,
                              self.scale, self.growthTracker, self.skippedSteps)
            return
        if not finite:
            self.scale[...] = float(self.scale) * self.backoffFactor
            self.growthTracker[...] = 0
            self.skippedSteps += 1
        elif self.growthTracker + 1 == self.growthInterval:
            with np.errstate(over="ignore"):
                grown = np.float32(float(self.scale) * self.growthFactor)
            if np.isfinite(grown):
                self.scale[...] = grown
            self.growthTracker[...] = 0
        else:
            self.growthTracker += 1

    def getState(self):
        """Host values of the state and the hyperparameters (as torch's state_dict), for checkpoints;
        reading them waits for the device."""
        return {"enabled": self.enabled, "scale": float(self.scale), "growthTracker": int(self.growthTracker),
                "skippedSteps": int(self.skippedSteps), "growthFactor": self.growthFactor,
                "backoffFactor": self.backoffFactor, "growthInterval": self.growthInterval}

    def setState(self, state):
        """Restore getState(); everything is checked before anything is written."""
        values = self.checkState(state)
        (self.growthFactor, self.backoffFactor, self.growthInterval), (scale, tracker, skipped) = values
        self.scale.fill(scale)
        self.growthTracker.fill(tracker)
        self.skippedSteps.fill(skipped)

    def checkState(self, state):
        """ModelFileError unless state is a getState() this scaler can load; returns the hyperparameters
        and the state values, checked."""
        if not isinstance(state, dict):
            raise ModelFileError("LossScaler.setState: no saved loss-scaler state (a float16 run needs one)")
        try:
            enabled = bool(state["enabled"])
            scale = self.checkScale(state["scale"])
            growthFactor = self.checkHyper("growthFactor", state["growthFactor"], low=1.0, lowOpen=True)
            backoffFactor = self.checkHyper("backoffFactor", state["backoffFactor"], high=1.0, lowOpen=True)
            growthInterval = checkPositiveInt(state["growthInterval"], "LossScaler: growthInterval")
            tracker, skipped = int(state["growthTracker"]), int(state["skippedSteps"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"LossScaler.setState: the saved state does not fit a LossScaler ({e})") from e
        if enabled != self.enabled:
            raise ModelFileError(f"LossScaler.setState: the state of {'an enabled' if enabled else 'a disabled'} "
                                 f"scaler cannot be loaded into {'an enabled' if self.enabled else 'a disabled'} one")
        if not (0 <= tracker < growthInterval and skipped >= 0):
            raise ModelFileError(f"LossScaler.setState: growthTracker {tracker} must be in [0, {growthInterval}) "
                                 f"and skippedSteps {skipped} >= 0")
        return (growthFactor, backoffFactor, growthInterval), (scale, tracker, skipped)
