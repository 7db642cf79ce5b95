"""The batched products behind per-sample gradients (modules/persample.py drives them): a layer whose batch
weight gradient is a sum of outer products over samples and positions gets each sample's gradient as one
batched GEMM, and each sample's squared gradient norm without forming the gradient when the positions'
Gram matrices are smaller (the "ghost norm" of Goodfellow 2015 and Li et al. 2022, as Opacus's ghost clipping)."""
from .backend import xp
from .dtype import statDtype
from .gemm import matmul


def outerSums(a, b):
    """a (..., P, m) and b (..., P, n) to sum_p a_p b_p^T, (..., m, n): one batched GEMM over the leading
    axes (batch, and groups), the positions P contracted."""
    return matmul(a.swapaxes(-1, -2), b)


def ghostFits(positions, m, n):
    """Whether the (P, P) Gram matrices of a sample hold no more than its (m, n) gradient: the ghost norm then
    needs less memory and work than forming the gradient (P^2 (m + n) against P m n multiply-adds)."""
    return positions * positions <= m * n


def outerSumNormsSquared(a, b):
    """||sum_p a_p b_p^T||^2 per sample, (batch,), summed over any further leading axes (groups): from the
    Gram matrices, sum_{p,q} (a_p . a_q)(b_p . b_q), when ghostFits, else from outerSums. Memory: one layer's
    Gram matrices or per-sample gradients, whichever is smaller."""
    if not ghostFits(*a.shape[-2:], b.shape[-1]):
        return rowNormsSquared(outerSums(a, b))
    return gramNormsSquared(matmul(a, a.swapaxes(-1, -2)), b)


def gramNormsSquared(gram, b):
    """sum_{p,q} gram_pq (b_p . b_q) per sample, (batch,), gram (..., P, P) the Gram matrix of the other
    factor and b (..., P, n): the ghost norm when that factor is not an array (an Embedder's one-hot rows)."""
    return productSums(gram, matmul(b, b.swapaxes(-1, -2)))


def rowNormsSquared(ary):
    """The squared norm of each row ary[i], (batch,), summed in statDtype."""
    return productSums(ary, ary)


def productSums(x, y):
    """sum of x[i] * y[i] over all axes but the first, (batch,), in statDtype (float32 for 16-bit data)."""
    n = x.shape[0]
    return xp.einsum("ij,ij->i", x.reshape(n, -1), y.reshape(n, -1), dtype=statDtype(x.dtype))
