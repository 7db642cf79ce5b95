"""ExponentialDecay: the learning rate shrinks by the same factor every step."""
from .schedule import Schedule


class ExponentialDecay(Schedule):
    """rate(t) = baseRate * gamma ** t, as torch.optim.lr_scheduler.ExponentialLR.

    A smooth version of StepDecay: gamma = 0.1 ** (1 / n) divides the rate by 10 every n steps.
    per: "epoch" (default) or "batch".
    """

    def __init__(self, optimizer, gamma, per="epoch"):
        self.gamma = self.checkHyper("gamma", gamma, lowOpen=True)
        super().__init__(optimizer, per)

    def rateAt(self, step):
        return self.baseRate * self.gamma ** step
