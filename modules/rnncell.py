"""RNNCell: the recurrence of one RNN layer in one direction, step by step; the base of the LSTM and GRU cells."""
from ..engine.backend import isCuda, xp
from ..engine.gemm import matmul
from ..engine.im2col import buffer
from ..engine.kernels import ElementwiseKernel
from .activation import activations

_sigmoidPreamble = "template <typename T> __device__ T sigmoid(T x) { return (T)1 / ((T)1 + exp(-x)); }\n"


def gateKernel(count, inParams, outParams, body, name):
    """A fused CuPy kernel over one step's (batch, hsize) units for a cell of count gates: body finds
    gate k of unit i at row offset base + k * H of the raw (batch, count * H) arrays, and has sigmoid().
    A raw array the body writes must be declared among outParams: CuPy makes every input const."""
    index = f"const ptrdiff_t base = (ptrdiff_t)(i / H) * {count} * H + i % H;\n"
    return ElementwiseKernel(inParams, outParams, index + body, name, _sigmoidPreamble)


def sigmoidGrad(out, a, b, y, tmp):
    """out = a * b * y * (1 - y): a gradient a * b through a sigmoid whose output is y (tmp: scratch)."""
    xp.subtract(1, y, out=tmp)
    tmp *= y
    xp.multiply(a, b, out=out)
    out *= tmp
    return out


def tanhGrad(out, a, b, y, tmp):
    """out = a * b * (1 - y * y): a gradient a * b through a tanh whose output is y (tmp: scratch)."""
    xp.multiply(y, y, out=tmp)
    xp.subtract(1, tmp, out=tmp)
    xp.multiply(a, b, out=out)
    out *= tmp
    return out


class RNNCell:
    """One layer and direction of RNN with h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act 'relu' or
    'tanh' (torch.nn.RNN); LSTM and GRU cells override ``gates``, ``inputBias``, ``allocate``,
    ``forwardStep``, ``backwardStep`` and, to carry more than h back in time, ``beginBackward``.

    Everything is time-major. ``forward`` projects the inputs of all steps with one GEMM into ``proj``
    (T, B, gates*H), then walks the steps (backwards in time for the reverse direction), writing h_t
    into ``out`` (a (T, B, H) view of the layer's output). ``backward`` walks them back and leaves the
    gradients of the pre-activations: ``dIh`` on the input side and ``dHh`` on the hidden side (the
    same array, except for GRU's n gate), from which RNN takes the weight and input gradients with one
    GEMM each. Buffers are kept between calls while (T, B, dtype) stay the same.
    """

    gates = 1

    def __init__(self, hsize, mode):
        self.hsize = hsize
        self.functions = activations.get(mode)
        self.proj = self.dIh = self.dHh = self.h0 = self.hh = self.dh = self.dhPrev = None
        self.tmp = (None, None)
        self.out, self.reverse = None, False

    def split(self, ary):
        """The per-gate (.., H) views of a (.., gates*H) array, in torch's gate order."""
        H = self.hsize
        return [ary[..., k * H:(k + 1) * H] for k in range(self.gates)]

    def steps(self, T):
        """Step indices in this direction's order."""
        return range(T - 1, -1, -1) if self.reverse else range(T)

    def prev(self, seq, t):
        """seq's entry for the step before t in this direction's order: the zero state at the first."""
        p = t + 1 if self.reverse else t - 1
        return self.h0 if p < 0 or p == seq.shape[0] else seq[p]

    def inputBias(self, bih, bhh):
        """The bias added to the input projection: both biases, as nothing sits between them."""
        return bih + bhh

    def allocate(self, T, B, dtype):
        G = self.gates * self.hsize
        self.proj = buffer(self.proj, (T, B, G), dtype)
        self.dIh = self.dHh = buffer(self.dIh, (T, B, G), dtype)
        self.hh = buffer(self.hh, (B, G), dtype)
        if self.h0 is None or self.h0.shape != (B, self.hsize) or self.h0.dtype != dtype:
            self.h0 = xp.zeros((B, self.hsize), dtype=dtype)
        self.dh, self.dhPrev = (buffer(a, (B, self.hsize), dtype) for a in (self.dh, self.dhPrev))
        self.tmp = tuple(buffer(a, (B, self.hsize), dtype) for a in self.tmp)

    def forward(self, x, W, out, reverse):
        """Run the layer on x (T, B, insize), writing the hidden states into out (T, B, H).
        W: the arrays 'ih', 'hh', 'bih', 'bhh' of this layer and direction, shaped as torch's."""
        T, B = x.shape[:2]
        self.allocate(T, B, x.dtype)
        self.out, self.reverse = out, reverse
        matmul(x.reshape(T * B, -1), W["ih"].T, out=self.proj.reshape(T * B, -1))
        self.proj += self.inputBias(W["bih"], W["bhh"])
        for t in self.steps(T):
            matmul(self.prev(out, t), W["hh"].T, out=self.hh)
            self.forwardStep(t, W)

    def backward(self, dOut, W):
        """Backpropagate through time the gradient dOut (T, B, H) of this direction's outputs into dIh, dHh."""
        self.beginBackward()
        self.dhPrev.fill(0)
        for t in reversed(self.steps(dOut.shape[0])):
            xp.add(dOut[t], self.dhPrev, out=self.dh)
            direct = self.backwardStep(t)
            matmul(self.dHh[t], W["hh"], out=self.dhPrev)
            if direct is not None:
                self.dhPrev += direct

    def beginBackward(self):
        """Reset what a cell carries from step to step besides h (LSTM's cell state gradient)."""

    def hiddenPairs(self):
        """(dHh, h_{t-1}) over the steps that have a previous state, for the W_hh gradient as one GEMM."""
        if self.reverse:
            return self.dHh[:-1], self.out[1:]
        return self.dHh[1:], self.out[:-1]

    def forwardStep(self, t, W):
        """Compute h_t into out[t] from proj[t] and self.hh = W_hh h_{t-1}."""
        h = self.out[t]
        xp.add(self.proj[t], self.hh, out=h)
        if isCuda:
            self.functions.cudaForward(h, h)
        else:
            self.functions.forward(h, h)

    def backwardStep(self, t):
        """Write the pre-activation gradients of step t from self.dh = dL/dh_t; return the part of
        dL/dh_{t-1} that does not go through W_hh (None when there is none)."""
        if isCuda:
            self.functions.cudaBackward(self.dh, self.out[t], self.dIh[t])
        else:
            xp.copyto(self.dIh[t], self.functions.backward(self.dh, self.out[t]))
        return None
