"""RNNLSTMCell: the LSTM recurrence of one RNN layer in one direction."""
from ..engine.backend import isCuda, xp
from ..engine.im2col import buffer
from .activation import activations
from .rnncell import RNNCell, gateKernel, sigmoidGrad, tanhGrad


class RNNLSTMCell(RNNCell):
    """LSTM as torch.nn.LSTM, gates in torch's order i, f, g, o:
    c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t), with i, f, o sigmoids and g a tanh of
    W_ih x_t + b_ih + W_hh h_{t-1} + b_hh.

    Forward overwrites ``proj`` with the gate activations and keeps c and tanh(c) of every step; on
    CuPy each step's gate math is one fused kernel forward and one backward.
    """

    gates = 4

    forwardKernel = gateKernel(
        4, "raw T hh, T cprev, int32 H", "raw T gates, T c, T tc, T h", """
        const T gi = sigmoid(gates[base] + hh[base]), gf = sigmoid(gates[base + H] + hh[base + H]);
        const T gg = tanh(gates[base + 2 * H] + hh[base + 2 * H]);
        const T go = sigmoid(gates[base + 3 * H] + hh[base + 3 * H]);
        gates[base] = gi; gates[base + H] = gf; gates[base + 2 * H] = gg; gates[base + 3 * H] = go;
        c = gf * cprev + gi * gg;
        tc = tanh(c);
        h = go * tc;
        """,
        "macrobatch_lstm_forward")
    backwardKernel = gateKernel(
        4, "raw T gates, T dh, T tc, T cprev, int32 H", "raw T dgates, T dc", """
        const T gi = gates[base], gf = gates[base + H], gg = gates[base + 2 * H], go = gates[base + 3 * H];
        const T d = dc + dh * go * ((T)1 - tc * tc);
        dgates[base] = d * gg * gi * ((T)1 - gi);
        dgates[base + H] = d * cprev * gf * ((T)1 - gf);
        dgates[base + 2 * H] = d * gi * ((T)1 - gg * gg);
        dgates[base + 3 * H] = dh * tc * go * ((T)1 - go);
        dc = d * gf;
        """,
        "macrobatch_lstm_backward")

    def __init__(self, hsize, mode="lstm"):
        super().__init__(hsize, mode)
        self.c = self.tc = self.dc = None

    def allocate(self, T, B, dtype):
        super().allocate(T, B, dtype)
        self.c, self.tc = (buffer(a, (T, B, self.hsize), dtype) for a in (self.c, self.tc))
        self.dc = buffer(self.dc, (B, self.hsize), dtype)

    def beginBackward(self):
        self.dc.fill(0)

    def forwardStep(self, t, W):
        gates, cprev = self.proj[t], self.prev(self.c, t)
        if isCuda:
            self.forwardKernel(self.hh, cprev, xp.int32(self.hsize), gates, self.c[t], self.tc[t], self.out[t])
            return
        H, sigmoid = self.hsize, activations["sigmoid"].forward
        gates += self.hh
        sigmoid(gates[:, :2 * H], gates[:, :2 * H])
        xp.tanh(gates[:, 2 * H:3 * H], out=gates[:, 2 * H:3 * H])
        sigmoid(gates[:, 3 * H:], gates[:, 3 * H:])
        i, f, g, o = self.split(gates)
        c = xp.multiply(f, cprev, out=self.c[t])
        c += xp.multiply(i, g, out=self.tmp[0])
        xp.multiply(o, xp.tanh(c, out=self.tc[t]), out=self.out[t])

    def backwardStep(self, t):
        tc, cprev = self.tc[t], self.prev(self.c, t)
        if isCuda:
            self.backwardKernel(self.proj[t], self.dh, tc, cprev, xp.int32(self.hsize), self.dIh[t], self.dc)
            return None
        i, f, g, o = self.split(self.proj[t])
        di, df, dg, do = self.split(self.dIh[t])
        a, b = self.tmp
        self.dc += tanhGrad(a, self.dh, o, tc, b)
        sigmoidGrad(do, self.dh, tc, o, b)
        sigmoidGrad(di, self.dc, g, i, b)
        sigmoidGrad(df, self.dc, cprev, f, b)
        tanhGrad(dg, self.dc, i, g, b)
        self.dc *= f
        return None
