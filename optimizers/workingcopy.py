"""WorkingCopy: the 16-bit weights and gradients a mixed-precision model computes with."""
import numpy

from ..engine.backend import isCuda, xp
from ..engine.kernels import ElementwiseKernel


class WorkingCopy:
    """For each float32 FlatBuffer of an optimizer (the master weights and gradients), a 16-bit flat
    array of weights and one of gradients with the same layout, and each Variable rebound to views of
    them: forward and backward then run in 16 bits, while the optimizer reads and updates float32.

    Per step: ``unscale`` turns the 16-bit gradients into float32 master gradients in one fused pass
    per buffer (dividing by the loss scale and checking them for Inf/NaN on the way), the optimizer
    updates the masters, and ``refresh`` casts them back into the 16-bit weights, one pass per buffer.

    ``bind`` (done at construction) and ``unbind`` switch the Variables between the 16-bit arrays and
    the float32 masters, and cast the modules' saved arrays alike (BatchNorm keeps float32 statistics
    either way), so a model can be saved or evaluated in float32 from the exact master weights.
    """

    # master = (float)work / scale, the same arithmetic as LossScaler's in-place unscale
    unscaleKernel = ElementwiseKernel(
        "H work, float32 scale", "float32 master, raw bool finite",
        "float value = (float)work;"
        "if (!isfinite(value)) finite[0] = false;"
        "master = value * (float)(1.0 / (double)scale);",
        "macrobatch_mixed_unscale")

    def __init__(self, buffers, module, dtype):
        self.buffers, self.module, self.dtype = buffers, module, numpy.dtype(dtype)
        self.data = [buf.data.astype(self.dtype) for buf in buffers]
        self.grad = [xp.zeros(buf.grad.shape, dtype=self.dtype) for buf in buffers]
        self.variables = [var for buf in buffers for var in buf.variables]
        # the views are made once, so an optimizer's binding check sees the same arrays after each switch
        self.masterViews = [(var.data, var.grad) for var in self.variables]
        self.workViews = [(data[offset:offset + var.size].reshape(var.shape),
                           grad[offset:offset + var.size].reshape(var.shape))
                          for buf, data, grad in zip(buffers, self.data, self.grad)
                          for var, offset in zip(buf.variables, buf.offsets)]
        self.bind()

    def bind(self):
        """Point every Variable at its 16-bit views (weights refreshed from the masters)."""
        self.refresh()
        self.point(self.workViews, self.dtype)

    def unbind(self):
        """Point every Variable back at the float32 masters."""
        self.point(self.masterViews, numpy.dtype(numpy.float32))

    def point(self, views, dtype):
        for var, (data, grad) in zip(self.variables, views):
            var.data, var.grad = data, grad
        for _, mod in self.module.namedModules():
            mod.castAttrs(dtype)

    def refresh(self):
        """Cast the float32 master weights into the 16-bit weights: one pass per buffer."""
        for buf, data in zip(self.buffers, self.data):
            data[...] = buf.data

    def unscale(self, scale):
        """Write the 16-bit gradients, divided by scale (a 0-d device float32, or None for 1), into the
        float32 master gradients; returns a 0-d device bool, whether they were all finite (None without a
        scale: the step is not gated, and non-finite gradients are the Trainer's to catch)."""
        if scale is None:
            for buf, grad in zip(self.buffers, self.grad):
                buf.grad[...] = grad
            return None
        finite = xp.ones((), dtype=bool)
        if isCuda:
            for buf, grad in zip(self.buffers, self.grad):
                self.unscaleKernel(grad, scale, buf.grad, finite)
            return finite
        inverse = numpy.float32(1.0 / float(scale))
        for buf, grad in zip(self.buffers, self.grad):
            finite &= numpy.isfinite(grad).all()
            numpy.multiply(grad, inverse, out=buf.grad)
        return finite
