"""OptimizerWrapper: the base of wrappers that stand where an optimizer stands."""


class OptimizerWrapper:
    """Wraps an optimizer so that a Trainer drives the wrapper as it would the optimizer (GradientAccumulation,
    DifferentialPrivacy): everything a subclass does not change reaches the wrapped ``optimizer``, whose hooks
    run on the gradients the wrapper hands it."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    @property
    def learnRate(self):
        return self.optimizer.learnRate

    @learnRate.setter
    def learnRate(self, value):
        self.optimizer.learnRate = value

    @property
    def steps(self):
        return self.optimizer.steps

    @property
    def precision(self):
        return self.optimizer.precision

    @property
    def slots(self):
        return self.optimizer.slots

    @property
    def bindings(self):
        return self.optimizer.bindings

    def setupOn(self, module, useGlobalState=True, precision="float32", lossScaler=None):
        self.optimizer.setupOn(module, useGlobalState, precision, lossScaler)
        return self

    def addHook(self, hook):
        self.optimizer.addHook(hook)
        return self

    def gradArrays(self):
        return self.optimizer.gradArrays()

    def backwardGradArrays(self):
        return self.optimizer.backwardGradArrays()

    def lossScale(self):
        return self.optimizer.lossScale()

    def masterWeights(self):
        return self.optimizer.masterWeights()

    def zeroGradParams(self):
        self.optimizer.zeroGradParams()

    def update(self):
        self.applyUpdate(self.prepareGrads())

    def prepareGrads(self):
        return self.optimizer.prepareGrads()

    def applyUpdate(self, finite=None):
        self.optimizer.applyUpdate(finite)

    def getState(self):
        return self.optimizer.getState()

    def setState(self, state):
        self.optimizer.setState(state)
