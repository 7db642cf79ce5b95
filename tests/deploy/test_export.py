"""exportOnnx and `macrobatch export`: every module family (with its options) exports to standard ONNX that passes
onnx.checker and that ONNX Runtime runs to macrobatch's eval-mode outputs within 1e-5, at batch 1 and 7; what has no
exact ONNX equivalent is refused by name before anything is written."""
import argparse

import numpy as np
import pytest

from macrobatch import modules as M
from macrobatch.engine.errors import ConversionError, ShapeError
from macrobatch.examples.resnet import smallResNet
from macrobatch.modules.module import Module

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from macrobatch.deploy.onnxconverters import converters  # noqa: E402 (needs onnx)
from macrobatch.deploy.onnxexport import exportOnnx  # noqa: E402


def case(factory, shape, id, **options):
    return pytest.param(factory, shape, options, id=id)


def acts(name, **kwargs):
    return case(lambda: M.Activation(name, **kwargs), (4, 5), f"activation-{name}")


def rnnCases():
    for mode in ("relu", "tanh", "lstm", "gru"):
        for direction in ("uni", "bi"):
            for seqs in (False, True):
                yield case(lambda m=mode, d=direction, s=seqs: M.RNN(3, 5, layers=2, mode=m, direction=d,
                                                                   getSequences=s, dropout=0.3),
                           (6, 3), f"rnn-{mode}-{direction}-{'seq' if seqs else 'last'}-stacked")
    yield case(lambda: M.RNN(3, 4, mode="lstm"), (5, 3), "rnn-lstm-single")


def multiGraph():
    """Two inputs, three outputs: Split (list sizes), Linear per part, Add of three, Mul, Concat, Identity."""
    a, b = M.Node(), M.Node()
    parts = M.Node(M.Split(axis=1, sections=[2, 4]), a)
    h1, h2 = M.Node(M.Linear(2, 4), parts[0]), M.Node(M.Linear(4, 4), parts[1])
    total = M.Node(M.Add(), [h1, h2, M.Node(M.Linear(3, 4), b)])
    joined = M.Node(M.Concat(axis=1), [M.Node(M.Mul(), [total, h1]), total])
    return M.Graph([a, b], [joined, h2, M.Node(M.Identity(), b)])


def swapHalves():
    """Split into equal parts on a negative axis, joined back in the other order."""
    x = M.Node()
    halves = M.Node(M.Split(axis=-1, sections=2), x)
    return M.Graph(x, M.Node(M.Concat(axis=-1), [halves[1], halves[0]]))


families = [
    case(lambda: M.Linear(6, 4), (6,), "linear"),
    case(lambda: M.Linear(6, 4, useBias=False), (6,), "linear-nobias"),
    case(lambda: M.Conv1D(3, 4, 3, stride=2, pad=1), (3, 9), "conv1d-stride-pad"),
    case(lambda: M.Conv2D(4, 6, 3, stride=(2, 1), pad=(1, 0), dilation=(1, 2), groups=2), (4, 9, 10),
         "conv2d-dilation-groups"),
    case(lambda: M.Conv2D(4, 4, 3, pad=1, groups=4, useBias=False), (4, 6, 5), "conv2d-depthwise-nobias"),
    case(lambda: M.Conv3D(2, 4, (2, 3, 2), stride=(1, 2, 1), pad=1, dilation=(2, 1, 1), groups=2), (2, 5, 6, 5),
         "conv3d"),
    case(lambda: M.Deconv1D(3, 4, 3, stride=2, pad=1, outPad=1), (3, 5), "deconv1d-outpad"),
    case(lambda: M.Deconv2D(4, 6, 3, stride=2, pad=1, dilation=2, groups=2, outPad=1), (4, 5, 6),
         "deconv2d-dilation-groups-outpad"),
    case(lambda: M.Deconv2D(3, 2, (2, 3), stride=(2, 3), outPad=(1, 2), useBias=False), (3, 4, 3),
         "deconv2d-nobias"),
    case(lambda: M.Deconv3D(2, 2, 2, stride=2), (2, 3, 3, 3), "deconv3d"),
    case(lambda: M.MaxPool1D(3, 2, 1, ceilMode=True), (2, 10), "maxpool1d-ceil"),
    case(lambda: M.MaxPool2D(3, (2, 1), 1, dilation=(1, 2), ceilMode=True), (3, 9, 8), "maxpool2d-dilation-ceil"),
    case(lambda: M.MaxPool2D(2, ceilMode=True), (3, 7, 7), "maxpool2d-ceil-partial"),
    case(lambda: M.MaxPool3D(2), (2, 4, 4, 5), "maxpool3d"),
    case(lambda: M.AvgPool1D(3, 2, 1, ceilMode=True, countIncludePad=False), (2, 10), "avgpool1d-ceil-excludepad"),
    case(lambda: M.AvgPool2D(3, 2, 1, ceilMode=True), (3, 8, 7), "avgpool2d-ceil-includepad"),
    case(lambda: M.AvgPool2D((3, 2), 1, (1, 0), countIncludePad=False), (3, 5, 4), "avgpool2d-excludepad"),
    case(lambda: M.AvgPool2D(4), (3, 4, 4), "avgpool2d-global"),
    case(lambda: M.AvgPool3D(2, ceilMode=True), (2, 3, 5, 4), "avgpool3d-ceil"),
    case(lambda: M.GlobalAvgPool(), (3, 5), "globalavgpool1d"),
    case(lambda: M.GlobalAvgPool(), (3, 4, 5), "globalavgpool2d"),
    case(lambda: M.GlobalAvgPool(), (2, 3, 3, 3), "globalavgpool3d"),
    case(lambda: M.BatchNorm(5), (5,), "batchnorm"),
    case(lambda: M.BatchNorm1D(4), (4, 6), "batchnorm1d"),
    case(lambda: M.BatchNorm2D(3), (3, 4, 5), "batchnorm2d"),
    case(lambda: M.BatchNorm2D(3, epsilon=1e-3, affine=False), (3, 4, 5), "batchnorm2d-noaffine"),
    case(lambda: M.BatchNorm3D(2), (2, 3, 3, 3), "batchnorm3d"),
    case(lambda: M.LayerNorm(6), (4, 6), "layernorm"),
    case(lambda: M.LayerNorm((4, 5), epsilon=1e-3), (3, 4, 5), "layernorm-2axes"),
    case(lambda: M.LayerNorm(6, affine=False), (6,), "layernorm-noaffine"),
    case(lambda: M.GroupNorm(2, 6), (6, 4, 5), "groupnorm"),
    case(lambda: M.GroupNorm(3, 6), (6,), "groupnorm-vectors"),
    case(lambda: M.GroupNorm(2, 4, affine=False), (4, 7), "groupnorm-noaffine"),
    case(lambda: M.GroupNorm(4, 4), (4, 3, 3), "groupnorm-onepermap"),
    case(lambda: M.InstanceNorm2D(3), (3, 4, 5), "instancenorm2d"),
    case(lambda: M.InstanceNorm2D(3, affine=True), (3, 4, 5), "instancenorm2d-affine"),
    acts("relu"), acts("leakyRelu", slope=0.2), acts("sigmoid"), acts("tanh"), acts("gelu"), acts("swish"),
    acts("silu"), acts("elu", alpha=0.7), acts("selu"), acts("softPlus", beta=2.0, threshold=1.5),
    acts("clip", low=-0.5, high=0.8),
    case(lambda: M.PRelu(3), (3, 4, 5), "prelu"),
    case(lambda: M.PRelu(4, sharedAlpha=True), (4,), "prelu-shared"),
    case(lambda: M.SoftMax(), (5,), "softmax"),
    case(lambda: M.SoftMax(), (3, 4, 4), "softmax-maps"),
    case(lambda: M.Sequential(M.Embedder(10, 4), M.Flatten()), (6,), "embedder", indices=10),
    case(lambda: M.Sequential(M.Embedder(10, 4), M.Linear(4, 2)), (), "embedder-one-index", indices=10),
    case(lambda: M.Sequential(M.Embedder(10, 4, paddingIndex=-1), M.RNN(4, 5, mode="gru")), (6,),
         "embedder-padding-gru", indices=10),
    *rnnCases(),
    case(lambda: M.Flatten(), (3, 4, 5), "flatten"),
    case(lambda: M.Reshape((-1, 2)), (4, 5), "reshape"),
    case(lambda: M.Transpose((0, 2, 3, 1)), (3, 4, 5), "transpose"),
    case(lambda: M.Pad2D((1, 2, 0, 3), value=0.5), (3, 4, 5), "pad2d-constant"),
    case(lambda: M.Pad2D((2, 1, 1, 2), mode="reflect"), (3, 5, 6), "pad2d-reflect"),
    case(lambda: M.Pad2D(2, mode="replicate"), (3, 4, 5), "pad2d-replicate"),
    case(lambda: M.Upsample2D((2, 3)), (3, 4, 5), "upsample2d-nearest"),
    case(lambda: M.Upsample2D((3, 2), mode="bilinear"), (3, 4, 5), "upsample2d-bilinear"),
    case(lambda: M.Sequential(M.Conv2D(2, 3, 3), M.Dropout2D(0.3), M.Flatten(), M.Dropout(0.5), M.Linear(27, 2)),
         (2, 5, 5), "dropout-removed"),
    case(lambda: M.Sequential(M.Linear(4, 4), M.Identity()), (4,), "identity"),
    case(multiGraph, [(6,), (3,)], "graph-2in-3out-split-add-mul-concat"),
    case(swapHalves, (3, 6), "graph-split-equal-negative-axis"),
    case(lambda: M.Sequential(M.Parallel(M.Conv2D(3, 4, 1), M.Conv2D(3, 2, 3, pad=1), shared=True), M.Concat(1)),
         (3, 5, 5), "parallel-shared-inception"),
    case(lambda: M.Parallel(M.Linear(3, 2), M.Linear(4, 2)), [(3,), (4,)], "parallel-lists"),
]


@pytest.mark.parametrize("opset", [17, 21])
@pytest.mark.parametrize("factory, shape, options", families)
def test_family_exports_to_checked_onnx_that_onnxruntime_runs_to_equal_outputs(factory, shape, options, opset,
                                                                              onnxMatches, randomState):
    onnxMatches(randomState(factory()), shape, opset=opset, **options)


def test_weights_are_named_as_the_model_names_its_variables(tmp_path):
    net = M.Sequential(M.Linear(3, 4), M.BatchNorm(4), M.Linear(4, 2, name="head"))
    model = exportOnnx(net, tmp_path / "net.onnx")
    assert {i.name for i in model.graph.initializer} == {"0.W", "0.b", "1.scale", "1.bias", "1.mean", "1.var",
                                                         "head.W", "head.b"}
    assert {i.name for i in exportOnnx(M.Linear(3, 2), tmp_path / "net.onnx").graph.initializer} == {"W", "b"}


def test_float16_model_exports_with_float32_weights(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from macrobatch.engine.backend import toDevice, toHost
    net = M.Sequential(M.Linear(4, 8), M.BatchNorm(8), M.Activation("relu"), M.Linear(8, 3)).cast(np.float16)
    model = exportOnnx(net, tmp_path / "net.onnx")
    assert {i.data_type for i in model.graph.initializer} == {onnx.TensorProto.FLOAT}
    x = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float16)
    with net.evaluating():
        want = toHost(net(toDevice(x))).astype(np.float32)
    got = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.astype(np.float32)})[0]
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2)


def test_every_module_class_has_a_converter():
    bases = {Module, M.MultiModule, M.ConvND, M.DeconvND, M.PoolND, M.Pool1D, M.Pool2D, M.Pool3D, M.MaxPoolND,
             M.AvgPoolND}
    quantized = {M.Int8Linear, M.Int8Conv}  # exported as QDQ from the float model (test_quantize), refused here
    bases |= quantized
    classes = {obj for obj in vars(M).values() if isinstance(obj, type) and issubclass(obj, Module)} - bases
    assert classes - set(converters) == set()


def test_dropout_leaves_no_node_and_batchnorm_uses_running_statistics(onnxMatches, randomState):
    net = randomState(M.Sequential(M.Linear(4, 4), M.Dropout(0.5), M.BatchNorm(4)))
    model = onnx.load(onnxMatches(net, (4,)))
    assert [node.op_type for node in model.graph.node] == ["Gemm", "BatchNormalization", "Identity"]
    assert net.modules[1].train  # exporting left the modes as they were


def test_batch_dimension_is_dynamic(onnxMatches):
    model = onnx.load(onnxMatches(M.Sequential(M.Conv2D(1, 2, 3), M.Flatten(), M.Linear(16, 3)), (1, 4, 6)))
    for info in (model.graph.input[0], model.graph.output[0]):
        assert info.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_main_job_cnn_as_train_builds_it_exports_and_matches(onnxMatches, randomState):
    from macrobatch.cli.train import buildModel
    onnxMatches(randomState(buildModel("cnn", (1, 8, 8), [("labels", 10, None)])), (1, 8, 8))


def test_multi_head_model_exports_one_output_per_head(onnxMatches, randomState):
    from macrobatch.cli.train import buildModel
    net = randomState(buildModel("cnn", (1, 8, 8), [("digit", 10, None), ("size", None, (2,))]))
    assert len(onnx.load(onnxMatches(net, (1, 8, 8))).graph.output) == 2


def test_resnet_example_exports_and_matches(onnxMatches, randomState):
    onnxMatches(randomState(smallResNet()), (1, 8, 8))


def test_lstm_example_exports_and_matches(onnxMatches, randomState):
    # the network examples/lstm_classifier.py trains
    onnxMatches(randomState(M.Sequential(M.RNN(1, 16, mode="lstm"), M.Linear(16, 3))), (24, 1))


def test_input_shape_is_inferred_from_a_first_linear_layer(tmp_path):
    model = exportOnnx(M.Sequential(M.Dropout(), M.Linear(5, 2)), tmp_path / "net.onnx")
    assert [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == ["batch", 5]


class Custom(Module):
    def updateData(self, data):
        return data


class TunedLinear(M.Linear):
    """A subclass may compute something else: exported only if it has its own converter."""


def splitBatch():
    x = M.Node()
    return M.Graph(x, M.Node(M.Split(axis=0, sections=1), x)[0])


@pytest.mark.parametrize("factory, shape, words", [
    (lambda: M.Sequential(M.Linear(3, 3), Custom(), M.Sequential(Custom(name="inner"))), (3,),
     ["'1' (Custom)", "'2.inner' (Custom)"]),
    (lambda: TunedLinear(3, 2), (3,), ["TunedLinear"]),
    (lambda: M.MaxPool1D(2, stride=1, pad=1, dilation=2), (1, 1), ["MaxPool1D", "only padding", "-inf"]),
    (splitBatch, (3,), ["Split", "batch axis"]),
], ids=["custom-module", "subclass", "maxpool-empty-window", "split-batch-axis"])
def test_unexportable_module_is_refused_by_name_before_anything_is_written(factory, shape, words, tmp_path):
    path = tmp_path / "net.onnx"
    path.write_bytes(b"earlier")
    with pytest.raises(ConversionError) as info:
        exportOnnx(factory(), path, shape)
    for word in words:
        assert word in str(info.value)
    assert path.read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]


def test_missing_shapes_and_bad_opsets_are_refused(tmp_path):
    with pytest.raises(ShapeError, match="cannot be inferred"):
        exportOnnx(M.Conv2D(1, 2, 3), tmp_path / "a.onnx")
    with pytest.raises(ShapeError, match="list of 2"):
        exportOnnx(M.Parallel(M.Linear(3, 2), M.Linear(4, 2)), tmp_path / "a.onnx", (3,))
    for opset in (16, 999, "17"):
        with pytest.raises(ValueError, match="opset"):
            exportOnnx(M.Linear(3, 2), tmp_path / "a.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


def exportCommand(argv):
    from macrobatch.cli import export
    parser = argparse.ArgumentParser()
    export.addParser(parser.add_subparsers())
    args = parser.parse_args(argv)
    args.run(args)


def test_cli_export_uses_the_shape_recorded_in_the_model_file(tmp_path, randomState, capsys):
    ort = pytest.importorskip("onnxruntime")
    from macrobatch.engine.backend import toDevice, toHost
    net = randomState(smallResNet())
    net.save(tmp_path / "model.h5", inputShape=(1, 8, 8))
    exportCommand(["export", str(tmp_path / "model.h5"), str(tmp_path / "model.onnx"), "--opset", "18"])
    assert "model.onnx" in capsys.readouterr().out
    model = onnx.load(tmp_path / "model.onnx")
    assert model.opset_import[0].version == 18
    x = np.random.default_rng(0).standard_normal((7, 1, 8, 8)).astype(np.float32)
    with net.evaluating():
        want = toHost(net(toDevice(x)))
    got = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)


def test_cli_export_takes_a_shape_for_a_file_without_one(tmp_path):
    M.Sequential(M.Conv1D(2, 3, 3), M.Flatten()).save(tmp_path / "model.h5")
    with pytest.raises(ShapeError):
        exportCommand(["export", str(tmp_path / "model.h5"), str(tmp_path / "a.onnx")])
    exportCommand(["export", str(tmp_path / "model.h5"), str(tmp_path / "a.onnx"), "--shape", "2,7"])
    assert [d.dim_value for d in onnx.load(tmp_path / "a.onnx").graph.output[0].type.tensor_type.shape.dim[1:]] == [15]


def test_a_failed_write_names_the_file_and_leaves_nothing(tmp_path):
    with pytest.raises(OSError, match="cannot write .*net.onnx"):
        exportOnnx(M.Linear(3, 2), tmp_path / "missing" / "net.onnx")
    assert list(tmp_path.iterdir()) == []
