"""RNN: stacked, optionally bidirectional LSTM, GRU or plain recurrent layers on (batch, time, insize) inputs."""
import numbers

from ..engine.backend import xp
from ..engine.checks import checkPositiveInt
from ..engine.dtype import defaultDtype
from ..engine.errors import ShapeError
from ..engine.gemm import matmul
from ..engine.im2col import buffer
from ..engine.init import initWeights
from ..engine.persample import outerSumNormsSquared, outerSums
from ..engine.variable import Variable
from .dropout import Dropout
from .module import Module
from .rnncell import RNNCell
from .rnngrucell import RNNGRUCell
from .rnnlstmcell import RNNLSTMCell


class RNN(Module):
    """Recurrent layers as torch.nn.LSTM / GRU / RNN with batch_first=True, zero initial states.

    mode: 'lstm', 'gru', 'relu' or 'tanh' (the last two: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)).
    layers: how many are stacked; direction: 'uni', or 'bi' for a second pass backwards in time whose
    states are concatenated to the forward ones (the next layer and the output see 2 * hsize features).
    getSequences: output every step, (batch, time, hsize * directions); else the last step
    (batch, hsize * directions), for 'bi' the forward pass's last step and the backward pass's first,
    as torch's h_n.

    Parameters carry torch's names and shapes (weight_ih_l0 (gates*hsize, insize), weight_hh_l0,
    bias_ih_l0, bias_hh_l0, weight_ih_l0_reverse, ...; gates LSTM i, f, g, o; GRU r, z, n), so a torch
    state dict copies over name by name; initialised as torch, uniform in +-1/sqrt(hsize).

    dropout: in train mode, the probability of zeroing each output of every layer but the last before
    the next layer reads it (inverted dropout, as torch's dropout argument); masks come from
    engine.random, so setSeed reproduces them. Eval mode and the recurrence inside a layer never drop.

    Each layer and direction projects the inputs of all steps with one GEMM and loops over time only
    (see RNNCell); backward through time runs explicitly, and the weight gradients are one GEMM each.
    """

    cells = {"lstm": RNNLSTMCell, "gru": RNNGRUCell, "relu": RNNCell, "tanh": RNNCell}

    def __init__(self, insize, hsize, layers=1, mode="lstm", direction="uni", getSequences=False, dropout=0.0,
                 name=None):
        super().__init__(name)
        self.registerBlueprint(locals())
        if mode not in self.cells:
            raise ValueError(f"unknown RNN mode {mode!r}; expected one of {sorted(self.cells)}")
        if direction not in ("uni", "bi"):
            raise ValueError(f"direction must be 'uni' or 'bi', got {direction!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
            raise ValueError(f"{self.describe()}: dropout must be a probability in [0, 1), got {dropout!r}")
        self.insize, self.hsize = checkPositiveInt(insize, "insize"), checkPositiveInt(hsize, "hsize")
        self.layers = checkPositiveInt(layers, "layers")
        self.dropout = float(dropout)
        # between layer k and k + 1; their train flag follows the RNN's at each call
        self.dropouts = [Dropout(self.dropout) for _ in range(self.layers - 1)]
        self.mode, self.getSequences = mode, getSequences
        self.directions = 2 if direction == "bi" else 1
        cell = self.cells[mode]
        self.layerCells = [[cell(hsize, mode) for _ in range(self.directions)] for _ in range(self.layers)]
        G = cell.gates * hsize
        for k in range(self.layers):
            size = insize if k == 0 else hsize * self.directions
            for d in range(self.directions):
                for key, shape in (("weight_ih", (G, size)), ("weight_hh", (G, hsize)), ("bias_ih", (G,)),
                                   ("bias_hh", (G,))):
                    self.vars[self.paramName(key, k, d)] = Variable(initWeights(shape, hsize, G, "uniform",
                                                                                defaultDtype))
        self.layerInputs = [None] * self.layers  # time-major input of each layer, kept for the weight gradients
        self.layerOutputs = [None] * self.layers
        self.layerGrads = [None] * self.layers   # gradient of each layer's output, time-major
        self.inGrad = None
        self.gradFrom = None  # the output gradient the cells' gradients were computed from

    @staticmethod
    def paramName(key, layer, direction):
        return f"{key}_l{layer}" + ("_reverse" if direction else "")

    def weights(self, layer, direction):
        """The arrays of one layer and direction, under the names RNNCell uses."""
        return {short: self.vars[self.paramName(key, layer, direction)].data for short, key in
                (("ih", "weight_ih"), ("hh", "weight_hh"), ("bih", "bias_ih"), ("bhh", "bias_hh"))}

    def checkDataShape(self, shape):
        if len(shape) != 3 or shape[2] != self.insize or 0 in shape[:2]:
            raise ShapeError(f"{self.describe()}: expected input of shape (batch, time, {self.insize}) with "
                             f"batch and time at least 1, got {tuple(shape)}")

    def updateData(self, data):
        B, T, _ = data.shape
        H = self.hsize
        x = self.layerInputs[0] = buffer(self.layerInputs[0], (T, B, self.insize), data.dtype)
        xp.copyto(x, data.transpose(1, 0, 2))
        for k, cells in enumerate(self.layerCells):
            self.layerInputs[k] = x
            out = self.layerOutputs[k] = buffer(self.layerOutputs[k], (T, B, H * self.directions), data.dtype)
            for d, cell in enumerate(cells):
                cell.forward(x, self.weights(k, d), out[..., d * H:(d + 1) * H], reverse=d == 1)
            x = self.dropBetweenLayers(k, out)
        if self.getSequences:
            return xp.ascontiguousarray(x.transpose(1, 0, 2))
        return x[-1].copy() if self.directions == 1 else xp.concatenate((x[-1, :, :H], x[0, :, H:]), axis=1)

    def dropBetweenLayers(self, layer, out):
        """The output of layer as the next layer reads it: dropped out in train mode (out itself for the
        last layer, in eval mode or without dropout)."""
        if layer == self.layers - 1:
            return out
        drop = self.dropouts[layer]
        drop.train = self.train
        return drop.updateData(out)

    def backward(self, grad, updGrad=True, updParamGrads=True):
        self.gradFrom = None  # a new backward pass: run through time again even for a reused array
        return super().backward(grad, updGrad, updParamGrads)

    def backwardThroughTime(self, grad):
        """Leave in every cell the gradients of its pre-activations (once per backward pass)."""
        if self.gradFrom is grad:
            return
        T, B, width = self.layerOutputs[-1].shape
        H = self.hsize
        dOut = self.layerGrads[-1] = buffer(self.layerGrads[-1], (T, B, width), grad.dtype)
        if self.getSequences:
            xp.copyto(dOut, grad.transpose(1, 0, 2))
        else:
            dOut.fill(0)
            dOut[-1, :, :H] = grad[:, :H]
            if self.directions == 2:
                dOut[0, :, H:] = grad[:, H:]
        for k in range(self.layers - 1, -1, -1):
            for d, cell in enumerate(self.layerCells[k]):
                cell.backward(self.layerGrads[k][..., d * H:(d + 1) * H], self.weights(k, d))
            if k > 0:  # through the next layer's input, then through the dropout mask in front of it
                self.layerGrads[k - 1] = self.dropouts[k - 1].updateGrad(self.inputGrad(k, self.layerGrads[k - 1]))
        self.gradFrom = grad

    def inputGrad(self, layer, out):
        """The gradient of a layer's input (T, B, size), summed over directions, into the buffer out."""
        T, B, size = self.layerInputs[layer].shape
        out = buffer(out, (T, B, size), self.layerInputs[layer].dtype)
        flat = out.reshape(T * B, size)
        for d, cell in enumerate(self.layerCells[layer]):
            dIh, W = cell.dIh.reshape(T * B, -1), self.weights(layer, d)["ih"]
            if d == 0:
                matmul(dIh, W, out=flat)
            else:
                flat += matmul(dIh, W)
        return out

    def updateGrad(self, grad):
        self.backwardThroughTime(grad)
        self.inGrad = self.inputGrad(0, self.inGrad)
        return xp.ascontiguousarray(self.inGrad.transpose(1, 0, 2))

    def accGradParams(self, grad):
        self.backwardThroughTime(grad)
        for k, cells in enumerate(self.layerCells):
            x = self.layerInputs[k]
            x = x.reshape(-1, x.shape[-1])
            for d, cell in enumerate(cells):
                G = cell.dIh.shape[-1]
                dIh, (dHh, hprev) = cell.dIh.reshape(-1, G), cell.hiddenPairs()
                self.vars[self.paramName("weight_ih", k, d)].accumulateMatmul(dIh.T, x)
                self.vars[self.paramName("weight_hh", k, d)].accumulateMatmul(dHh.reshape(-1, G).T,
                                                                              hprev.reshape(-1, self.hsize))
                self.vars[self.paramName("bias_ih", k, d)].accumulateSum(dIh, axis=0)
                self.vars[self.paramName("bias_hh", k, d)].accumulateSum(cell.dHh.reshape(-1, G), axis=0)

    # --- per-sample gradients -------------------------------------------------------------

    def perSampleGrads(self, grad):
        """Each sample's gradient of every weight and bias (batch, *shape), summed over its steps: one batched
        GEMM per parameter over the cells' pre-activation gradients and what they multiply."""
        batch = grad.shape[0]
        return {name: outerSums(*factors).reshape((batch,) + self.vars[name].shape)
                for name, factors in self.sampleFactors(grad).items()}

    def perSampleNormsSquared(self, grad):
        """Each sample's squared gradient norm, a weight's from the (time, time) Gram matrices of its two
        factors (ghost norm) where those are smaller than its gradient."""
        return sum(outerSumNormsSquared(*factors) for factors in self.sampleFactors(grad).values())

    def sampleFactors(self, grad):
        """Per parameter name, batch-major (a, b) (batch, steps, .) whose outer products summed over the steps
        are each sample's gradient (as accGradParams' GEMMs): the input (or previous state) for a weight,
        ones for a bias."""
        self.backwardThroughTime(grad)
        factors = {}
        for k, cells in enumerate(self.layerCells):
            x = self.layerInputs[k].swapaxes(0, 1)
            ones = xp.ones(x.shape[:2] + (1,), dtype=x.dtype)
            for d, cell in enumerate(cells):
                dIh, (dHh, hprev) = cell.dIh.swapaxes(0, 1), cell.hiddenPairs()
                factors[self.paramName("weight_ih", k, d)] = (dIh, x)
                factors[self.paramName("weight_hh", k, d)] = (dHh.swapaxes(0, 1), hprev.swapaxes(0, 1))
                factors[self.paramName("bias_ih", k, d)] = (dIh, ones)
                factors[self.paramName("bias_hh", k, d)] = (cell.dHh.swapaxes(0, 1), ones)
        return factors
