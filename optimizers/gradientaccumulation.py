"""GradientAccumulation: one optimizer step from the gradients of several batches."""
from ..engine.backend import toDevice, toHost
from ..engine.errors import ModelFileError
from ..engine.checks import checkPositiveInt
from .wrapper import OptimizerWrapper


class GradientAccumulation(OptimizerWrapper):
    """Wraps an optimizer so that a Trainer (zeroGradParams, backward, update on every batch) steps
    once every ``batches`` batches, from the mean of their gradients: parameter gradients already add
    up across backward calls, so zeroGradParams only clears them at the start of a group, and the
    update of the last batch of a group divides them by the group's size and steps.

    Costs return the gradient of the batch's MEAN loss, so with equal batch sizes a group of k batches
    of n samples gives the step of one batch of k * n samples (up to rounding, for models without
    batch statistics). A last group cut short by the end of the data is pending until ``flush()``
    (call it after each epoch), which steps from the mean over the batches it holds. Under a Trainer's Poisson
    sampling (DP-SGD) each group is one logical batch cut into ``batches`` pieces (Handler batchesPerStep), so
    no group is ever cut short.

    The wrapper stands where the optimizer would: ``GradientAccumulation(Adam(1e-3), 4).setupOn(net)``,
    then pass it to the Trainer. ``learnRate``, ``steps`` (updates applied), ``addHook`` and
    ``gradArrays`` reach the wrapped optimizer, whose hooks run on the averaged gradients.

    Under mixed precision (``setupOn(net, precision=...)``) the group's gradients add up in the 16-bit
    gradients backward writes (scaled by the loss scale with float16); the last batch unscales them
    into float32 once, averages them there, and steps, so the loss scale adapts once per group, as
    torch's GradScaler does when it steps once per accumulated group.
    """

    def __init__(self, optimizer, batches):
        super().__init__(optimizer)
        self.batches = checkPositiveInt(batches, "GradientAccumulation: batches")
        self.pending = 0

    def setupOn(self, module, useGlobalState=True, precision="float32", lossScaler=None):
        super().setupOn(module, useGlobalState, precision, lossScaler)
        self.pending = 0
        return self

    def zeroGradParams(self):
        """Clear the gradients at the start of a group only; inside one they keep adding up."""
        if self.pending == 0:
            self.optimizer.zeroGradParams()

    def update(self):
        """Count the batch whose gradients were just accumulated; step when the group is full."""
        if not self.optimizer.slots:
            raise RuntimeError("GradientAccumulation.update called before setupOn(module)")
        self.pending += 1
        if self.pending == self.batches:
            self.step()

    def flush(self):
        """Step from the batches of a partial group, if any; returns whether a step was applied."""
        if self.pending == 0:
            return False
        self.step()
        return True

    def step(self):
        finite = self.optimizer.prepareGrads()  # zero-fills gradients left stale since the group began
        if self.pending > 1:
            scale = 1.0 / self.pending
            for grad in self.optimizer.gradArrays():
                grad *= scale
        self.pending = 0
        self.optimizer.applyUpdate(finite)

    def getState(self):
        """The wrapped optimizer's state, the pending count and, inside a group, the gradients
        accumulated so far (host arrays by parameter name), so a resumed run continues the group."""
        grads = {name: toHost(var.grad).copy() for name, var, _, _ in self.optimizer.bindings} if self.pending else {}
        return {"optimizer": self.optimizer.getState(), "pending": self.pending, "grads": grads}

    def setState(self, state):
        """Restore getState() on a wrapper set up on the same architecture."""
        pending, grads = int(state["pending"]), state["grads"]
        if not 0 <= pending < self.batches:
            raise ModelFileError(f"GradientAccumulation.setState: {pending} pending batches do not fit groups "
                                 f"of {self.batches}")
        bindings = {name: var for name, var, _, _ in self.optimizer.bindings}
        if pending and (set(grads) != set(bindings)
                        or any(grads[name].shape != var.shape for name, var in bindings.items())):
            raise ModelFileError("GradientAccumulation.setState: the saved gradients do not fit this model's "
                                 "parameters (another architecture)")
        self.optimizer.setState(state["optimizer"])
        for name, saved in grads.items():
            var = bindings[name]
            var.grad[...] = toDevice(saved, var.dtype)
        self.pending = pending
