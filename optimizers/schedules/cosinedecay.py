"""CosineDecay: half a cosine from the base rate down to minRate over totalSteps."""
import math

from .schedule import Schedule


class CosineDecay(Schedule):
    """rate(t) = minRate + (baseRate - minRate) * (1 + cos(pi * t / totalSteps)) / 2 for t <= totalSteps,
    then minRate: torch.optim.lr_scheduler.CosineAnnealingLR with T_max = totalSteps, eta_min = minRate,
    except that past T_max torch climbs back up the cosine while this stays at minRate (as optax's
    cosine_decay_schedule).

    Slow at the start and end, fast in between: no rate to tune by hand but the last one.
    per: "batch" (default) or "epoch".
    """

    def __init__(self, optimizer, totalSteps, minRate=0.0, per="batch"):
        self.totalSteps = self.checkInt("totalSteps", totalSteps, 1)
        self.minRate = self.checkHyper("minRate", minRate)
        super().__init__(optimizer, per)

    def rateAt(self, step):
        progress = min(step, self.totalSteps) / self.totalSteps
        return self.minRate + (self.baseRate - self.minRate) * (1.0 + math.cos(math.pi * progress)) / 2.0
