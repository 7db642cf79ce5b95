"""StepDecay: the learning rate drops by a constant factor every stepSize steps."""
from .schedule import Schedule


class StepDecay(Schedule):
    """rate(t) = baseRate * gamma ** (t // stepSize), as torch.optim.lr_scheduler.StepLR.

    The classic staircase (e.g. divide by 10 every 30 epochs): long stretches at one rate, each
    drop taken once the previous rate has stopped paying off. per: "epoch" (default) or "batch".
    """

    def __init__(self, optimizer, stepSize, gamma=0.1, per="epoch"):
        self.stepSize = self.checkInt("stepSize", stepSize, 1)
        self.gamma = self.checkHyper("gamma", gamma, lowOpen=True)
        super().__init__(optimizer, per)

    def rateAt(self, step):
        return self.baseRate * self.gamma ** (step // self.stepSize)
