"""ConvND's shifted-rows path (engine/shiftgrid.py), the NumPy lowering of stride-1 convolutions: the same
outputs, gradients and per-sample gradients as the im2col path, chunk by chunk, and the geometries and
dtypes it leaves to im2col. CuPy runs im2col's kernels for every convolution, so these tests are NumPy's."""
import math

import numpy as np
import pytest

from macrobatch.engine import parallel
from macrobatch.engine.backend import isCuda, toDevice, toHost
from macrobatch.modules.conv1d import Conv1D
from macrobatch.modules.conv2d import Conv2D
from macrobatch.modules.conv3d import Conv3D

pytestmark = pytest.mark.skipif(isCuda, reason="the shifted-rows path is NumPy's: CuPy lowers with im2col's kernels")

spatial = {Conv1D: (11,), Conv2D: (7, 6), Conv3D: (5, 4, 6)}

# name -> constructor arguments after (inmaps 4, outmaps 6); tuples give a value per axis (first nd taken)
geometries = {
    "same-3": dict(size=3, pad=1),
    "no-pad": dict(size=3),
    "even-size-odd-input": dict(size=(2, 4, 2), pad=(1, 2, 0)),
    "pad-one-below-window": dict(size=3, pad=2),
    "dilation": dict(size=3, pad=(2, 1, 0), dilation=(2, 1, 2)),
    "groups": dict(size=3, pad=1, groups=2),
    "groups-per-axis-sizes": dict(size=(3, 1, 2), pad=(1, 0, 1), groups=2),
    "1x1-no-bias": dict(size=1, useBias=False),
}


def make(cls, args, seed=3):
    args = {k: v[:cls.nd] if isinstance(v, tuple) else v for k, v in args.items()}
    mod = cls(4, 6, **args)
    if "b" in mod.vars:
        mod.vars["b"].data[...] = toDevice(np.random.default_rng(seed).standard_normal(6).astype(np.float32))
    return mod


def im2colTwin(mod):
    """A copy of mod (same weights) that always takes the im2col path."""
    twin = type(mod).fromBlueprint(mod.getBlueprint())
    twin.setState(mod.getState())
    twin.shiftGrid = lambda data: None
    return twin


def run(mod, x, g):
    y = toHost(mod(toDevice(x))).copy()
    gx = toHost(mod.backward(toDevice(g)))
    return [y, gx] + [toHost(v.grad).copy() for v in mod.vars.values()]


@pytest.mark.parametrize("samples", [None, 1, 2], ids=["one-chunk", "a-sample-a-chunk", "two-then-one"])
@pytest.mark.parametrize("name", geometries)
@pytest.mark.parametrize("cls", spatial)
def test_output_and_all_gradients_match_the_im2col_path(cls, name, samples):
    mod = make(cls, geometries[name])
    if samples:  # chunks of this many samples' column matrices (of a batch of 3)
        cell = math.prod(s + p for s, p in zip(spatial[cls], mod.pad))
        mod.chunkBytes = samples * mod.inmaps * math.prod(mod.size) * cell * 4
    twin = im2colTwin(mod)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4) + spatial[cls]).astype(np.float32)
    g = rng.standard_normal((3, mod.outmaps) + mod.outputSize(spatial[cls])).astype(np.float32)
    ours, theirs = run(mod, x, g), run(twin, x, g)
    perChunk = min(samples or 3, -(-3 // parallel.workers))  # every worker gets a chunk
    assert mod.grid is not None and twin.grid is None and mod.lanes[0]["cols"].shape[1] == perChunk * mod.grid.positions
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("firstLayer", [False, True], ids=["with-input-gradient", "first-layer"])
@pytest.mark.parametrize("name", ["same-3", "groups", "dilation"])
@pytest.mark.parametrize("cls", spatial)
def test_chunks_dealt_to_three_workers_match_the_im2col_path(monkeypatch, cls, name, firstLayer):
    """Seven samples in chunks of one, dealt 3-2-2 to three workers: each lowers and multiplies its chunks in
    its own buffers, the weight gradient is the sum of the workers' sums (with the first layer's gradient
    laid out chunk by chunk), and every result is im2col's."""
    monkeypatch.setattr(parallel, "workers", 3)
    mod = make(cls, geometries[name])
    mod.chunkBytes = 1
    twin = im2colTwin(mod)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 4) + spatial[cls]).astype(np.float32)
    g = rng.standard_normal((7, mod.outmaps) + mod.outputSize(spatial[cls])).astype(np.float32)
    if firstLayer:
        for m in (mod, twin):
            m(toDevice(x))
            m.backward(toDevice(g), updGrad=False)
        ours, theirs = [[toHost(v.grad) for v in m.vars.values()] for m in (mod, twin)]
    else:
        ours, theirs = run(mod, x, g), run(twin, x, g)
    assert len(mod.lanes) == 3
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", spatial)
def test_a_second_batch_reuses_the_kept_buffers_and_their_zero_pads(cls):
    """The padded input and gradient buffers are kept; only data positions are rewritten, so their pads
    must still be zero: a batch of large values, then a batch of others, gives the second batch's result."""
    mod = make(cls, geometries["same-3"])
    twin = im2colTwin(mod)
    rng = np.random.default_rng(2)
    shape = (2, 4) + spatial[cls]
    run(mod, 1e3 * rng.standard_normal(shape).astype(np.float32), 1e3 * rng.standard_normal((2, 6) + spatial[cls]))
    mod.zeroGradParams()
    x, g = rng.standard_normal(shape).astype(np.float32), rng.standard_normal((2, 6) + spatial[cls]).astype(np.float32)
    for a, b in zip(run(mod, x, g), run(twin, x, g)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunkBytes", [4 << 20, 1], ids=["batch-in-one-chunk", "a-sample-a-chunk"])
@pytest.mark.parametrize("name", ["same-3", "groups", "dilation"])
@pytest.mark.parametrize("cls", spatial)
def test_per_sample_gradients_and_norms_match_the_im2col_path(cls, name, chunkBytes):
    """From the column matrix that forward kept, or (after a forward in chunks) the one lowered again."""
    mod = make(cls, geometries[name])
    mod.chunkBytes = chunkBytes
    twin = im2colTwin(mod)
    rng = np.random.default_rng(4)
    x = toDevice(rng.standard_normal((3, 4) + spatial[cls]).astype(np.float32))
    g = toDevice(rng.standard_normal((3, mod.outmaps) + mod.outputSize(spatial[cls])).astype(np.float32))
    mod(x), twin(x)
    ours, theirs = mod.perSampleGrads(g), twin.perSampleGrads(g)
    for key in theirs:
        np.testing.assert_allclose(toHost(ours[key]), toHost(theirs[key]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(toHost(mod.perSampleNormsSquared(g)), toHost(twin.perSampleNormsSquared(g)),
                               rtol=1e-5, atol=1e-5)


def test_keeps_no_column_matrix_between_forward_and_backward():
    """The weight gradient lowers the kept padded input again, a chunk at a time: the memory that the
    whole (inmaps*K, batch*positions) matrix took is gone."""
    mod = Conv2D(8, 16, 3, pad=1)
    mod.chunkBytes = 1  # a sample a chunk: its 12 * 12 positions
    x = np.random.default_rng(5).standard_normal((2, 8, 11, 11)).astype(np.float32)
    mod(toDevice(x))
    mod.backward(toDevice(np.ones((2, 16, 11, 11), np.float32)))
    assert mod.cols is None and mod.lanes[0]["cols"].shape == (8 * 9 + 1, 12 * 12)  # and the ones row of the bias


@pytest.mark.parametrize("args, dtype", [(dict(size=3, stride=2, pad=1), np.float32),
                                         (dict(size=3, stride=(1, 2), pad=1), np.float32),
                                         (dict(size=3, pad=3), np.float32),
                                         (dict(size=2, dilation=2, pad=3), np.float32),
                                         (dict(size=3, pad=1), np.float16)],
                         ids=["stride2", "stride-on-one-axis", "pad-as-large-as-window", "pad-as-large-as-dilated",
                              "float16"])
def test_strides_pads_as_large_as_the_window_and_16_bit_data_take_im2col(args, dtype):
    mod = Conv2D(3, 4, **args).cast(dtype)
    x = np.random.default_rng(6).standard_normal((2, 3, 7, 8)).astype(dtype)
    mod(toDevice(x))
    assert mod.grid is None and mod.cols is not None


@pytest.mark.parametrize("cls", spatial)
def test_batch_gradients_after_per_sample_ones_use_the_column_matrix_lowered_again(cls):
    """After a forward in chunks, per-sample gradients lower the whole column matrix again (with the ones row
    that folds the bias); the backward pass that follows takes its W and b gradients from it: as im2col's."""
    mod = make(cls, geometries["same-3"])
    mod.chunkBytes = 1
    twin = im2colTwin(mod)
    rng = np.random.default_rng(7)
    x = toDevice(rng.standard_normal((3, 4) + spatial[cls]).astype(np.float32))
    g = toDevice(rng.standard_normal((3, 6) + spatial[cls]).astype(np.float32))
    for m in (mod, twin):
        m(x)
        m.perSampleGrads(g)
        m.backward(g)
    assert mod.colsWhole and mod.biasRows() == 1 and mod.cols.shape[0] == 4 * 3 ** cls.nd + 1
    for key in ("W", "b"):
        np.testing.assert_allclose(toHost(mod.vars[key].grad), toHost(twin.vars[key].grad), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["same-3", "groups", "dilation"])
@pytest.mark.parametrize("cls", spatial)
def test_without_an_input_gradient_the_gradient_is_laid_out_chunk_by_chunk(cls, name):
    """A first layer's backward pass (no input gradient) lays each chunk's output gradient out on its own for
    the weight gradient, never the whole one; W and b gradients as im2col's, over two batches."""
    mod = make(cls, geometries[name])
    mod.chunkBytes = 2 * mod.inmaps * math.prod(mod.size) * math.prod(s + p for s, p in zip(spatial[cls], mod.pad)) * 4
    twin = im2colTwin(mod)
    rng = np.random.default_rng(8)
    for batch in (3, 5):
        x = toDevice(rng.standard_normal((batch, 4) + spatial[cls]).astype(np.float32))
        g = toDevice(rng.standard_normal((batch, mod.outmaps) + mod.outputSize(spatial[cls])).astype(np.float32))
        for m in (mod, twin):
            m.zeroGradParams()
            m(x)
            assert m.backward(g, updGrad=False) is None
        assert mod.flatGrad is None and mod.lanes[0]["gradChunk"].shape == (6, 2 * mod.grid.positions)
        for key in mod.vars:
            np.testing.assert_allclose(toHost(mod.vars[key].grad), toHost(twin.vars[key].grad), rtol=1e-5, atol=1e-5)


def test_a_new_spatial_size_laid_out_in_buffers_of_the_old_shape_finds_their_pads_zero():
    """Kept buffers are reused by shape: inputs of 5x1, then 1x3 both take 18 flat columns with their reach,
    but their pads sit apart. The second batch's outputs and gradients are im2col's all the same."""
    mod = Conv2D(1, 2, 3, pad=1)
    twin = im2colTwin(mod)
    rng = np.random.default_rng(9)
    run(mod, 1e3 * rng.standard_normal((1, 1, 5, 1)).astype(np.float32), 1e3 * np.ones((1, 2, 5, 1), np.float32))
    mod.zeroGradParams()
    x, g = rng.standard_normal((1, 1, 1, 3)).astype(np.float32), rng.standard_normal((1, 2, 1, 3)).astype(np.float32)
    for a, b in zip(run(mod, x, g), run(twin, x, g)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
