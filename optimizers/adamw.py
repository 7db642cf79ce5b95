"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""
from .adam import Adam


class AdamW(Adam):
    """Adam whose step also shrinks the weights: p -= learnRate * weightDecay * p, applied to p
    directly rather than added to the gradient, so the decay is not rescaled by the moments
    (torch.optim.AdamW's update).

    weightDecay: >= 0; the other hyperparameters (amsgrad included) as in Adam.
    """

    def __init__(self, learnRate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weightDecay=0.01, amsgrad=False):
        super().__init__(learnRate, beta1, beta2, epsilon, amsgrad)
        self.weightDecay = self.checkHyper("weightDecay", weightDecay)

    def decayFactor(self):
        return 1.0 - self.learnRate * self.weightDecay
