"""Helpers shared by the deploy tests, as fixtures: export a network and compare ONNX Runtime's outputs with
macrobatch's (eval mode) on the same random host inputs."""
import numpy as np
import pytest

from macrobatch.engine.backend import toDevice, toHost
from macrobatch.modules.multimodule import flatArrays


def _randomState(net, seed=5):
    """Non-trivial running statistics and affine parameters (scale, bias, slopes, biases), so that a wrong
    statistic or affine term cannot hide behind zeros and ones; weight matrices keep their initialisation."""
    rng = np.random.default_rng(seed)
    for _, mod in net.namedModules():
        for name, ary in mod.attrs.items():
            low = 0.5 if name == "var" else -1.0
            mod.attrs[name][...] = toDevice(rng.uniform(low, 1.5, ary.shape), ary.dtype)
        for name, var in mod.vars.items():
            if var.data.ndim == 1:
                base = 1.0 if name == "scale" else 0.0
                var.data[...] = toDevice(base + 0.3 * rng.standard_normal(var.shape), var.dtype)
    return net


@pytest.fixture
def randomState():
    return _randomState


@pytest.fixture
def onnxMatches(tmp_path):
    """check(net, shape, indices=None, batches=(1, 7), opset=17, path=None) exports net (inputShape shape) and,
    for each batch size, feeds the same random host inputs to ONNX Runtime and to net in eval mode, asserting
    equal outputs within 1e-5 (float32); indices=V makes integer inputs in [0, V) for an Embedder. Returns the
    exported path."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from macrobatch.deploy.onnxexport import exportOnnx

    def check(net, shape, indices=None, batches=(1, 7), opset=17, path=None):
        path = path or tmp_path / "net.onnx"
        exportOnnx(net, path, shape, opset=opset)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        shapes = shape if isinstance(shape, list) else [shape]
        names = [i.name for i in session.get_inputs()]
        rng = np.random.default_rng(11)
        for batch in batches:
            xs = [rng.integers(0, indices, (batch,) + tuple(s)).astype(np.int32) if indices else
                  rng.standard_normal((batch,) + tuple(s)).astype(np.float32) for s in shapes]
            with net.evaluating():
                ys = net([toDevice(x) for x in xs] if isinstance(shape, list) else toDevice(xs[0]))
            want = [toHost(y) for y in flatArrays(ys)]
            got = session.run(None, dict(zip(names, xs)))
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.shape == w.shape
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        return path

    return check
