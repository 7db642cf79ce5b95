"""importOnnx and `macrobatch import`: PyTorch models exported with torch.onnx.export (both exporters) import
to macrobatch networks whose eval-mode outputs equal PyTorch's within 1e-5 at batch 1 and 7, and that train;
graphs written with onnx.helper, one operator family each, match ONNX Runtime; what macrobatch cannot compute
is refused by name before anything is built or written."""
import argparse

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from macrobatch.cli import importonnx  # noqa: E402
from macrobatch.costs import CrossEntropy  # noqa: E402
from macrobatch.deploy.onnximport import OnnxImporter, importOnnx  # noqa: E402
from macrobatch.engine import setSeed, toDevice, toHost  # noqa: E402
from macrobatch.engine.errors import ConversionError  # noqa: E402
from macrobatch.handlers import Trainer  # noqa: E402
from macrobatch.modules import Graph, Sequential, loadModel, savedInputShape  # noqa: E402
from macrobatch.modules.multimodule import flatArrays  # noqa: E402
from macrobatch.optimizers import Adam  # noqa: E402


def evalOutputs(net, xs):
    """net's eval-mode outputs on host inputs xs (one array, or a list for several inputs), on the host."""
    with net.evaluating():
        ys = net([toDevice(x) for x in xs] if isinstance(xs, list) else toDevice(xs))
    return [toHost(y) for y in flatArrays(ys)]


# --- PyTorch round trips --------------------------------------------------------------------

def torchModels(torch):
    """name -> (module, per-sample input shape): the four models of the issue, with non-trivial BatchNorm state."""
    nn = torch.nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
            self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

        def forward(self, x):
            h = self.stem(x)
            return self.head(torch.relu(h + self.body(h)))

    class BiLSTM(nn.Module):
        """Two stacked bidirectional layers; the head reads the last step of the sequence and the final states."""
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(5, 6, num_layers=2, batch_first=True, bidirectional=True)
            self.head = nn.Linear(24, 3)

        def forward(self, x):
            out, (h, _) = self.lstm(x)
            return self.head(torch.cat([out[:, -1], h[-2], h[-1]], dim=1))

    torch.manual_seed(0)
    models = {
        "mlp": (nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)), (8,)),
        "cnn": (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(4, 6, 3, stride=2, groups=2), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
                              nn.Linear(6 * 1 * 1, 3)), (1, 8, 8)),
        "residual": (Residual(), (2, 6, 6)),
        "bilstm": (BiLSTM(), (7, 5)),
        # GroupNorm exports as a reshape, InstanceNormalization and a per-channel Mul and Add
        "norms-deconv": (nn.Sequential(nn.Conv2d(2, 4, 3), nn.GroupNorm(2, 4), nn.GELU(approximate="tanh"),
                                       nn.LayerNorm([4, 4, 4]), nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1,
                                                                                   output_padding=1),
                                       nn.PReLU(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.SiLU(),
                                       nn.Linear(2, 3)), (2, 6, 6)),
    }
    for model, _ in models.values():
        for mod in model.modules():
            if isinstance(mod, (nn.GroupNorm, nn.LayerNorm)):
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.5, 0.5)
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.data.uniform_(0.5, 1.5)
                mod.bias.data.uniform_(-0.5, 0.5)
        model.eval()
    return models


def exportTorch(torch, model, shape, path, exporter):
    """torch.onnx.export with a dynamic batch axis: the dynamo exporter (needs onnxscript), or the legacy
    TorchScript one without constant folding, which leaves its shape computations for the importer to fold."""
    x = torch.randn(2, *shape)
    if exporter == "dynamo":
        pytest.importorskip("onnxscript")
        torch.onnx.export(model, (x,), str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},),
                          verbose=False)
    else:
        torch.onnx.export(model, (x,), str(path), dynamo=False, do_constant_folding=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    return path


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "residual", "bilstm", "norms-deconv"])
def test_pytorch_model_imports_to_its_eval_outputs_at_batch_1_and_7(torch, tmp_path, name, exporter):
    model, shape = torchModels(torch)[name]
    net = importOnnx(exportTorch(torch, model, shape, tmp_path / "m.onnx", exporter))
    assert isinstance(net, Graph if name in ("residual", "bilstm") else Sequential)
    rng = np.random.default_rng(3)
    for batch in (1, 7):
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        got, = evalOutputs(net, x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["mlp", "cnn", "residual", "bilstm"])
def test_imported_pytorch_model_trains(torch, tmp_path, name):
    model, shape = torchModels(torch)[name]
    net = importOnnx(exportTorch(torch, model, shape, tmp_path / "m.onnx", "legacy"))
    setSeed(0)
    rng = np.random.default_rng(4)
    data = rng.standard_normal((64, *shape)).astype(np.float32)
    labels = (data.reshape(64, -1) @ rng.standard_normal((data[0].size, 3))).argmax(axis=1)  # learnable
    optimizer = Adam(learnRate=1e-2)
    optimizer.setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=16)
    losses = []
    for _ in range(8):
        trainer.trainFromHost(data, labels, macroBatchSize=64)
        losses.append(trainer.cost.getError())
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.9 * losses[0], losses


# --- operator families, written with onnx.helper, against ONNX Runtime ----------------------

def tensor(name, ary):
    return numpy_helper.from_array(np.asarray(ary), name)


def buildModel(nodes, inputs, weights=(), outputs=("y",), opset=17):
    """An ONNX model of nodes; inputs: name -> per-sample shape (float), or (shape, TensorProto type); the
    batch axis is dynamic."""
    infos = []
    for name, spec in inputs.items():
        shape, kind = spec if isinstance(spec[0], tuple) else (spec, TensorProto.FLOAT)
        infos.append(helper.make_tensor_value_info(name, kind, ["N", *shape]))
    graph = helper.make_graph(nodes, "g", infos, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                                                  for o in outputs], [tensor(k, v) for k, v in weights])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def assertMatchesRuntime(model, tmp_path, indices=None, reference=None):
    """The imported network's eval outputs equal ONNX Runtime's (on reference, a model computing the same,
    when given) within 1e-5 at batch 1 and 7; returns it."""
    path = tmp_path / "g.onnx"
    onnx.save(model, path)
    onnx.save(reference or model, tmp_path / "reference.onnx")
    net = importOnnx(path)
    session = ort.InferenceSession(str(tmp_path / "reference.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    for batch in (1, 7):
        feeds = {}
        for info in session.get_inputs():
            shape = (batch, *info.shape[1:])
            feeds[info.name] = rng.integers(0, indices, shape) if "int" in info.type else \
                rng.standard_normal(shape).astype(np.float32)
        want = session.run(None, feeds)
        xs = list(feeds.values())
        got = evalOutputs(net, xs if len(xs) > 1 else xs[0])
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    return net


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op.lower()}_{outputs[0]}", **attrs)


CONVS = {
    "conv1d-stride-dilation": ([node("Conv", ["x", "W", "b"], strides=[2], pads=[2, 2], dilations=[2])],
                               {"x": (3, 11)}, [("W", randn(4, 3, 3)), ("b", randn(4))]),
    "conv2d-uneven-pads": ([node("Conv", ["x", "W"], pads=[0, 1, 2, 0])], {"x": (2, 5, 6)}, [("W", randn(3, 2, 3, 2))]),
    "conv2d-same-upper": ([node("Conv", ["x", "W"], strides=[2, 2], auto_pad="SAME_UPPER")], {"x": (2, 6, 6)},
                          [("W", randn(3, 2, 3, 3))]),
    "conv3d-groups": ([node("Conv", ["x", "W", "b"], group=2, pads=[1] * 6, strides=[1, 2, 1])], {"x": (4, 4, 5, 3)},
                      [("W", randn(6, 2, 3, 3, 3)), ("b", randn(6))]),
    "deconv1d": ([node("ConvTranspose", ["x", "W", "b"], strides=[2], pads=[1, 1], output_padding=[1])],
                 {"x": (2, 5)}, [("W", randn(2, 3, 4)), ("b", randn(3))]),
    "deconv2d-groups-dilation": ([node("ConvTranspose", ["x", "W"], group=2, strides=[2, 2], dilations=[2, 1],
                                       pads=[1, 0, 1, 0])], {"x": (4, 3, 3)}, [("W", randn(4, 3, 3, 2))]),
    "maxpool2d-ceil-pads-dilation": ([node("MaxPool", ["x"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 0],
                                           dilations=[1, 2], ceil_mode=1)], {"x": (2, 7, 8)}, []),
    "maxpool1d": ([node("MaxPool", ["x"], kernel_shape=[3], strides=[2])], {"x": (2, 9)}, []),
    "avgpool2d-count-pad": ([node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                  count_include_pad=1)], {"x": (2, 7, 7)}, []),
    "avgpool3d-exclude-pad-ceil": ([node("AveragePool", ["x"], kernel_shape=[2, 2, 2], strides=[2, 2, 2],
                                         pads=[1] * 6, ceil_mode=1)], {"x": (1, 5, 4, 5)}, []),
    "resize-nearest-asymmetric-floor": ([node("Resize", ["x", "", "sc"], coordinate_transformation_mode="asymmetric",
                                               nearest_mode="floor")], {"x": (2, 3, 4)},
                                        [("sc", np.array([1, 1, 2, 3], np.float32))]),
    "resize-nearest-half-pixel": ([node("Resize", ["x", "", "sc"])], {"x": (2, 3, 4)},
                                  [("sc", np.array([1, 1, 3, 2], np.float32))]),
    "resize-bilinear-to-computed-sizes": ([node("Shape", ["x"], ["s"], end=2),
                                           node("Concat", ["s", "hw"], ["sz"], axis=0),
                                           node("Resize", ["x", "", "", "sz"], mode="linear")], {"x": (2, 3, 4)},
                                          [("hw", np.array([6, 12]))]),
    "global-average-pool-flatten": ([node("GlobalAveragePool", ["x"], ["g"]), node("Flatten", ["g"])],
                                    {"x": (3, 4, 5)}, []),
}


@pytest.mark.parametrize("case", CONVS.values(), ids=CONVS.keys())
def test_convolutions_and_pooling_match_onnx_runtime(tmp_path, case):
    nodes, inputs, weights = case
    assertMatchesRuntime(buildModel(nodes, inputs, weights, opset=19), tmp_path)


NORMS = {
    "batchnorm1d-momentum": ([node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3, momentum=0.8)],
                             {"x": (4, 6)}, [("s", randn(4)), ("b", randn(4)), ("m", randn(4)),
                                             ("v", np.abs(randn(4)) + 0.5)], 17),
    "layernorm-last-axis": ([node("LayerNormalization", ["x", "s", "b"], axis=-1)], {"x": (3, 5)},
                            [("s", randn(5)), ("b", randn(5))], 17),
    "layernorm-two-axes-no-bias": ([node("LayerNormalization", ["x", "s"], axis=1, epsilon=1e-3)], {"x": (3, 4)},
                                   [("s", randn(3, 4))], 17),
    "groupnorm-per-channel": ([node("GroupNormalization", ["x", "s", "b"], num_groups=2)], {"x": (4, 3, 3)},
                              [("s", randn(4)), ("b", randn(4))], 21),
    "groupnorm-then-channel-mul-add": ([node("GroupNormalization", ["x", "s", "b"], ["g"], num_groups=2),
                                        node("Mul", ["c", "g"], ["m"]), node("Add", ["m", "d"])], {"x": (4, 3, 3)},
                                       [("s", randn(4)), ("b", randn(4)), ("c", randn(4, 1, 1)),
                                        ("d", randn(4, 1, 1))], 21),
    "instancenorm2d": ([node("InstanceNormalization", ["x", "s", "b"])], {"x": (3, 4, 5)},
                       [("s", randn(3)), ("b", randn(3))], 17),
    "instancenorm1d": ([node("InstanceNormalization", ["x", "s", "b"])], {"x": (3, 6)},
                       [("s", randn(3)), ("b", randn(3))], 17),
}


@pytest.mark.parametrize("case", NORMS.values(), ids=NORMS.keys())
def test_normalisations_match_onnx_runtime(tmp_path, case):
    nodes, inputs, weights, opset = case
    assertMatchesRuntime(buildModel(nodes, inputs, weights, opset=opset), tmp_path)


def test_batchnorm_momentum_is_converted_to_torchs_convention(tmp_path):
    nodes, inputs, weights, _ = NORMS["batchnorm1d-momentum"]
    onnx.save(buildModel(nodes, inputs, weights), tmp_path / "bn.onnx")
    norm, = importOnnx(tmp_path / "bn.onnx").modules
    assert norm.momentum == pytest.approx(0.2) and norm.epsilon == pytest.approx(1e-3)


def test_every_activation_matches_onnx_runtime(tmp_path):
    chain = [("Relu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Elu", {"alpha": 0.5}), ("Selu", {}), ("Softplus", {}),
             ("Gelu", {"approximate": "tanh"}), ("Sigmoid", {}), ("Tanh", {})]
    nodes = [node(op, [f"a{i}"], [f"a{i + 1}"], **attrs) for i, (op, attrs) in enumerate(chain)]
    n = len(chain)
    nodes += [node("Clip", [f"a{n}", "lo", "hi"], [f"a{n + 1}"]), node("PRelu", [f"a{n + 1}", "slope"], ["p"]),
              node("Flatten", ["p"], ["f"]), node("Softmax", ["f"], axis=1)]
    nodes[0].input[0] = "x"
    weights = [("lo", np.float32(-0.5)), ("hi", np.float32(0.8)), ("slope", randn(3, 1, 1))]
    net = assertMatchesRuntime(buildModel(nodes, {"x": (3, 2, 2)}, weights, opset=20), tmp_path)
    assert isinstance(net, Sequential)


def test_silu_as_torch_exports_it_is_one_swish_activation(tmp_path):
    nodes = [node("Sigmoid", ["x"], ["s"]), node("Mul", ["x", "s"])]
    net = assertMatchesRuntime(buildModel(nodes, {"x": (5,)}), tmp_path)
    assert [m.activation for _, m in net.namedModules() if hasattr(m, "activation")] == ["swish"]


def recurrentModel(op, direction, output, layout=0, gates=4, H=4, insize=3, **attrs):
    """x (N, 5, insize) through op; output 'Y': every step as (N, 5, D * H), 'Y_h': the final states (N, D * H)."""
    D = 2 if direction == "bidirectional" else 1
    weights = [("W", randn(D, gates * H, insize, seed=1)), ("R", randn(D, gates * H, H, seed=2) * 0.5),
               ("B", randn(D, 2 * gates * H, seed=3)), ("keep", np.array([0, 0, -1]))]
    outs = ["Y", "Y_h"] if output == "Y_h" else ["Y"]
    rnn = node(op, ["xt" if layout == 0 else "x", "W", "R", "B"], outs, hidden_size=H, direction=direction,
               layout=layout, **attrs)
    if layout == 1:
        tail = [node("Reshape", ["Y", "keep"]) if output == "Y" else node("Flatten", ["Y_h"])]
    elif output == "Y":
        tail = [node("Transpose", ["Y"], ["Yt"], perm=[2, 0, 1, 3]), node("Reshape", ["Yt", "keep"])]
    else:
        tail = [node("Transpose", ["Y_h"], ["Ht"], perm=[1, 0, 2]), node("Flatten", ["Ht"])]
    head = [node("Transpose", ["x"], ["xt"], perm=[1, 0, 2])] if layout == 0 else []
    return buildModel(head + [rnn] + tail, {"x": (5, insize)}, weights, opset=17)


@pytest.mark.parametrize("op, gates, attrs", [("LSTM", 4, {}), ("GRU", 3, {"linear_before_reset": 1}),
                                              ("RNN", 1, {}), ("RNN", 1, {"activations": ["Relu"]})],
                         ids=["lstm", "gru", "rnn-tanh", "rnn-relu"])
@pytest.mark.parametrize("direction, output", [("forward", "Y"), ("bidirectional", "Y"), ("bidirectional", "Y_h")])
def test_recurrent_layers_match_onnx_runtime(tmp_path, op, gates, attrs, direction, output):
    if "activations" in attrs and direction == "bidirectional":  # one list per direction
        attrs = {"activations": attrs["activations"] * 2}
    assertMatchesRuntime(recurrentModel(op, direction, output, gates=gates, **attrs), tmp_path)


def test_batch_major_lstm_layout_1_matches_the_time_major_one_in_onnx_runtime(tmp_path):
    # ONNX Runtime does not run layout 1: the reference is the same LSTM with layout 0 and transposes
    assertMatchesRuntime(recurrentModel("LSTM", "bidirectional", "Y_h", layout=1), tmp_path,
                         reference=recurrentModel("LSTM", "bidirectional", "Y_h"))


def test_embedding_gather_matches_onnx_runtime(tmp_path):
    model = buildModel([node("Gather", ["table", "x"], axis=0)], {"x": ((6,), TensorProto.INT64)},
                       [("table", randn(10, 4))])
    assertMatchesRuntime(model, tmp_path, indices=10)


def test_layout_operators_and_a_two_input_two_output_graph_match_onnx_runtime(tmp_path):
    nodes = [node("Split", ["x", "sizes"], ["s0", "s1"], axis=1), node("Concat", ["s1", "s0"], ["c"], axis=1),
             node("Add", ["c", "z"], ["a"]), node("Mul", ["a", "x"], ["m"]),
             node("Pad", ["m", "pads"], ["p"], mode="reflect"), node("Transpose", ["p"], ["t"], perm=[0, 3, 1, 2]),
             node("Unsqueeze", ["t", "ax"], ["u"]), node("Squeeze", ["u", "ax"], ["q"]),
             node("Reshape", ["q", "flat"], ["r"]), node("MatMul", ["r", "W"], ["mm"]),
             node("Add", ["bias", "mm"], ["y"]),
             node("Flatten", ["m"], ["y2"]), node("Dropout", ["y2"], ["y3"]), node("Identity", ["y3"], ["y4"])]
    weights = [("sizes", np.array([1, 2])), ("pads", np.array([0, 0, 1, 2, 0, 0, 1, 0])), ("ax", np.array([2])),
               ("flat", np.array([0, -1])), ("W", randn(3 * 5 * 6, 4)), ("bias", randn(4))]
    model = buildModel(nodes, {"x": (3, 3, 4), "z": (3, 3, 4)}, weights, outputs=("y", "y4"))
    net = assertMatchesRuntime(model, tmp_path)
    kinds = [type(m).__name__ for _, m in net.namedModules()]
    assert isinstance(net, Graph) and kinds.count("Linear") == 1 and kinds.count("Add") == 1  # the bias folded


# --- what is refused, and the command --------------------------------------------------------

def test_unsupported_operators_are_refused_by_name_with_their_nodes_before_anything_is_built(tmp_path):
    nodes = [node("Cos", ["x"], ["c"]), helper.make_node("Erf", ["c"], ["e"], name="erf_a"),
             helper.make_node("Erf", ["e"], ["y"], name="erf_b")]
    path = tmp_path / "bad.onnx"
    onnx.save(buildModel(nodes, {"x": (4,)}), path)
    with pytest.raises(ConversionError, match=r"Cos \(nodes 'cos_c'\); Erf \(nodes 'erf_a', 'erf_b'\)"):
        importOnnx(path)
    args = argparse.Namespace(onnx=str(path), out=str(tmp_path / "model.h5"))
    with pytest.raises(ConversionError):
        importonnx.importModel(args)
    assert not (tmp_path / "model.h5").exists()


@pytest.mark.parametrize("nodes, weights, message", [
    ([node("Gelu", ["x"])], [], "exact \\(erf\\) GELU"),
    ([node("Reshape", ["x", "shape"])], [("shape", np.array([-1]))], "keeping one batch axis"),
    ([node("Add", ["x", "c"])], [("c", randn(4))], "Add of a constant"),
    ([node("Softmax", ["x"], axis=0)], [], "over axis 1"),
    ([node("Unsqueeze", ["x", "ax"], ["u"]), node("Resize", ["u", "", "sc"], mode="cubic")],
     [("ax", np.array([2, 3])), ("sc", np.array([1, 1, 2, 2], np.float32))], "cubic resize"),
], ids=["exact-gelu", "reshape-into-batch", "add-constant", "softmax-over-batch", "cubic-resize"])
def test_what_has_no_exact_counterpart_is_refused_with_the_node(tmp_path, nodes, weights, message):
    path = tmp_path / "bad.onnx"
    onnx.save(buildModel(nodes, {"x": (4,)}, weights, opset=20), path)
    with pytest.raises(ConversionError, match=message):
        importOnnx(path)


def test_import_command_writes_a_model_file_that_loads_to_the_same_outputs(tmp_path, capsys):
    nodes, inputs, weights = CONVS["conv3d-groups"]
    onnx.save(buildModel(nodes + [node("Relu", ["y"], ["r"])], inputs, weights, outputs=("r",)), tmp_path / "c.onnx")
    parser = argparse.ArgumentParser()
    importonnx.addParser(parser.add_subparsers())
    args = parser.parse_args(["import", str(tmp_path / "c.onnx"), str(tmp_path / "c.h5")])
    args.run(args)
    assert "wrote" in capsys.readouterr().out
    assert savedInputShape(tmp_path / "c.h5") == (4, 4, 5, 3)
    x = randn(2, 4, 4, 5, 3)
    np.testing.assert_array_equal(evalOutputs(loadModel(tmp_path / "c.h5"), x)[0],
                                  evalOutputs(OnnxImporter(tmp_path / "c.onnx").module, x)[0])


def test_macrobatch_models_exported_by_exportonnx_import_back_to_the_same_outputs(tmp_path):
    from macrobatch import modules as M
    from macrobatch.deploy.onnxexport import exportOnnx
    from macrobatch.examples.resnet import smallResNet
    nets = [(smallResNet(), (1, 8, 8)),
            (M.Sequential(M.RNN(3, 8, layers=2, mode="gru", direction="bi", getSequences=True), M.Flatten(),
                          M.Linear(5 * 16, 2)), (5, 3)),
            (M.Sequential(M.Conv2D(2, 3, 3, pad=1), M.Upsample2D(2, "bilinear"), M.Pad2D((1, 0, 2, 1), "reflect"),
                          M.InstanceNorm2D(3, affine=True), M.PRelu(3), M.AvgPool2D(2, ceilMode=True), M.SoftMax()),
             (2, 5, 5))]
    for k, (net, shape) in enumerate(nets):
        exportOnnx(net, tmp_path / f"{k}.onnx", shape)
        x = randn(7, *shape)
        np.testing.assert_allclose(evalOutputs(importOnnx(tmp_path / f"{k}.onnx"), x)[0], evalOutputs(net, x)[0],
                                   rtol=1e-6, atol=1e-6)
