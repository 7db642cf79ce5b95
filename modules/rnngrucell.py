"""RNNGRUCell: the GRU recurrence of one RNN layer in one direction."""
from ..engine.backend import isCuda, xp
from ..engine.im2col import buffer
from .activation import activations
from .rnncell import RNNCell, gateKernel, sigmoidGrad, tanhGrad


class RNNGRUCell(RNNCell):
    """GRU as torch.nn.GRU, gates in torch's order r, z, n:
    r, z = sigmoid(W_i x_t + b_i + W_h h_{t-1} + b_h), n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn)),
    h_t = (1 - z) * n + z * h_{t-1}.

    b_hn sits inside r * (...), so it is not folded into the input projection, and the hidden-side
    gradient dHh differs from dIh on the n gate (r times it). Forward overwrites ``proj`` with r, z, n
    and keeps W_hn h_{t-1} + b_hn of every step; on CuPy each step's gate math is one fused kernel.
    """

    gates = 3

    forwardKernel = gateKernel(
        3, "raw T hh, T bhn, T hprev, int32 H", "raw T gates, T hn, T h", """
        const T r = sigmoid(gates[base] + hh[base]), z = sigmoid(gates[base + H] + hh[base + H]);
        hn = hh[base + 2 * H] + bhn;
        const T n = tanh(gates[base + 2 * H] + r * hn);
        gates[base] = r; gates[base + H] = z; gates[base + 2 * H] = n;
        h = n + z * (hprev - n);
        """,
        "macrobatch_gru_forward")
    backwardKernel = gateKernel(
        3, "raw T gates, T dh, T hprev, T hn, int32 H", "raw T dih, raw T dhh, T direct", """
        const T r = gates[base], z = gates[base + H], n = gates[base + 2 * H];
        const T dn = dh * ((T)1 - z) * ((T)1 - n * n);
        const T dz = dh * (hprev - n) * z * ((T)1 - z);
        const T dr = dn * hn * r * ((T)1 - r);
        dih[base] = dr; dih[base + H] = dz; dih[base + 2 * H] = dn;
        dhh[base] = dr; dhh[base + H] = dz; dhh[base + 2 * H] = dn * r;
        direct = dh * z;
        """,
        "macrobatch_gru_backward")

    def __init__(self, hsize, mode="gru"):
        super().__init__(hsize, mode)
        self.hn = None

    def inputBias(self, bih, bhh):
        bias = bih.copy()
        bias[:2 * self.hsize] += bhh[:2 * self.hsize]
        return bias

    def allocate(self, T, B, dtype):
        dHh = self.dHh if self.dHh is not self.dIh else None
        super().allocate(T, B, dtype)
        self.dHh = buffer(dHh, self.dIh.shape, dtype)
        self.hn = buffer(self.hn, (T, B, self.hsize), dtype)

    def forwardStep(self, t, W):
        H, gates, hprev = self.hsize, self.proj[t], self.prev(self.out, t)
        bhn = W["bhh"][2 * H:]
        if isCuda:
            self.forwardKernel(self.hh, bhn, hprev, xp.int32(H), gates, self.hn[t], self.out[t])
            return
        rz = gates[:, :2 * H]
        rz += self.hh[:, :2 * H]
        activations["sigmoid"].forward(rz, rz)
        r, z, n = self.split(gates)
        hn = xp.add(self.hh[:, 2 * H:], bhn, out=self.hn[t])
        n += xp.multiply(r, hn, out=self.tmp[0])
        xp.tanh(n, out=n)
        a = xp.subtract(hprev, n, out=self.tmp[0])
        a *= z
        xp.add(n, a, out=self.out[t])

    def backwardStep(self, t):
        H, hprev, hn = self.hsize, self.prev(self.out, t), self.hn[t]
        if isCuda:
            direct = self.tmp[0]
            self.backwardKernel(self.proj[t], self.dh, hprev, hn, xp.int32(H), self.dIh[t], self.dHh[t], direct)
            return direct
        r, z, n = self.split(self.proj[t])
        dr, dz, dn = self.split(self.dIh[t])
        a, b = self.tmp
        tanhGrad(dn, self.dh, xp.subtract(1, z, out=a), n, b)
        sigmoidGrad(dz, self.dh, xp.subtract(hprev, n, out=a), z, b)
        sigmoidGrad(dr, dn, hn, r, b)
        dHh = self.dHh[t]
        xp.copyto(dHh[:, :2 * H], self.dIh[t][:, :2 * H])
        xp.multiply(dn, r, out=dHh[:, 2 * H:])
        return xp.multiply(self.dh, z, out=a)
