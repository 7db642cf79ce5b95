"""Post-training quantisation (deploy.quantize): int8 weights per output channel, calibrated input scales,
float16, the saved files, and the quantize command line; the ONNX Runtime QDQ model at the end."""
import argparse
import os

import h5py
import numpy as np
import pytest

from macrobatch.costs import CrossEntropy
from macrobatch.datasets.digits import loadDigits
from macrobatch.deploy.calibration import activationRanges
from macrobatch.engine.int8 import qmax
from macrobatch.modules import Int8Conv, Int8Linear
from macrobatch.deploy.quantize import fileSizes, loadQuantized, quantizeModel
from macrobatch.engine import setSeed, toDevice, toHost
from macrobatch.engine.errors import DatasetError
from macrobatch.handlers import Trainer
from macrobatch.models import mlpTrunk, multiHead, smallCNN
from macrobatch.modules import Conv2D, Flatten, Linear, Sequential, loadModel
from macrobatch.optimizers import Adam
from macrobatch.cli import quantize as quantizeCli


@pytest.fixture(scope="module")
def trained():
    """A small digits CNN (Conv, BatchNorm, MaxPool, Linear) trained for a few epochs, with its calibration
    batches and held-out test samples (host arrays)."""
    setSeed(0)
    x, y = loadDigits()
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    net = smallCNN((1, 8, 8), 10, maps=(8, 16))
    optimizer = Adam(learnRate=1e-2)
    optimizer.setupOn(net)
    trainer = Trainer(net, CrossEntropy(), optimizer, batchsize=64)
    for _ in range(8):
        trainer.train(toDevice(x[:1400]), toDevice(y[:1400].astype(np.int32)))
    return net, [x[i:i + 128] for i in range(0, 512, 128)], x[1400:], y[1400:]


def accuracy(net, x, y):
    with net.evaluating():
        return float((toHost(net(toDevice(x, net.dtype))).argmax(axis=1) == y).mean())


@pytest.mark.parametrize("to,method", [("int8", "minmax"), ("int8", "percentile"), ("float16", "minmax")])
def test_quantized_accuracy_within_one_point_of_float32(trained, to, method):
    net, batches, x, y = trained
    base = accuracy(net, x, y)
    assert base > 0.95
    quantized = quantizeModel(net, to, batches, method)
    assert abs(accuracy(quantized, x, y) - base) <= 0.01
    assert accuracy(net, x, y) == base  # the float32 network is left as it was


def test_int8_replaces_linear_and_conv_only(trained):
    net, batches, _, _ = trained
    quantized = quantizeModel(net, "int8", batches)
    kinds = [type(mod).__name__ for mod in quantized.modules]
    assert kinds == [type(mod).__name__.replace("Conv2D", "Int8Conv").replace("Linear", "Int8Linear")
                     for mod in net.modules]
    assert kinds.count("Int8Conv") == 2 and kinds.count("Int8Linear") == 1 and "BatchNorm2D" in kinds


def test_int8_replaces_layers_inside_a_graph_and_its_nested_sequentials():
    setSeed(0)
    trunk, features = mlpTrunk(12, hidden=(16,))
    net = multiHead(trunk, features, [("a", 3, ()), ("b", None, (2,))])
    x = np.random.default_rng(0).standard_normal((32, 12)).astype(np.float32)
    quantized = quantizeModel(net, "int8", [x])
    kinds = {path: type(mod).__name__ for path, mod in quantized.namedModules()}
    assert [kinds[p] for p in ("0.1.", "classes:a.", "values:b.0.")] == ["Int8Linear"] * 3
    with net.evaluating(), quantized.evaluating():
        for ours, ref in zip(quantized(toDevice(x)), net(toDevice(x))):
            np.testing.assert_allclose(toHost(ours), toHost(ref), atol=0.05 * float(np.abs(toHost(ref)).max()))


def test_int8_weights_and_scales_round_trip_through_the_file(trained, tmp_path):
    net, batches, x, _ = trained
    quantized = quantizeModel(net, "int8", batches)
    quantized.save(tmp_path / "int8.h5", (1, 8, 8))
    with h5py.File(tmp_path / "int8.h5") as f:
        assert f["attrs/0.W"].dtype == np.int8 and f["attrs/0.wScale"].dtype == np.float32
        assert "params/0.W" not in f  # no float copy of the weights
    loaded = loadModel(tmp_path / "int8.h5")
    for (_, a), (_, b) in zip(quantized.namedModules(), loaded.namedModules()):
        assert type(a) is type(b)
        for name, ary in a.attrs.items():
            assert b.attrs[name].dtype == ary.dtype
            np.testing.assert_array_equal(toHost(b.attrs[name]), toHost(ary))
    with quantized.evaluating(), loaded.evaluating():
        np.testing.assert_array_equal(toHost(loaded(toDevice(x[:16]))), toHost(quantized(toDevice(x[:16]))))


def test_float16_file_loads_back_in_float16(trained, tmp_path):
    net, _, x, _ = trained
    quantizeModel(net, "float16").save(tmp_path / "half.h5")
    loaded = loadQuantized(tmp_path / "half.h5")
    assert loaded.dtype == np.float16 and loadQuantized(tmp_path / "half.h5").dtype == np.float16
    assert os.path.getsize(tmp_path / "half.h5") < fileSizes(net, (1, 8, 8))["float32"]


def test_per_channel_scales_match_a_hand_computation():
    lin = Linear(2, 3)
    W = np.array([[1.0, -0.5, 0.0], [-2.54, 0.25, 0.0]], dtype=np.float32)  # columns: max |W| 2.54, 0.5, 0
    lin.vars["W"].data[...] = toDevice(W)
    conv = Conv2D(1, 2, 1)
    conv.vars["W"].data[...] = toDevice(np.array([3.0, -6.35], dtype=np.float32).reshape(2, 1, 1, 1))
    net = Sequential(conv, Flatten(), Linear(2, 2))
    for quantized, float_, Wf, axis in ((quantizeModel(lin, "int8", [np.ones((1, 2), np.float32)]), lin, W, 1),
                                        (quantizeModel(net, "int8", [np.ones((1, 1, 1, 1), np.float32)])[0],
                                         conv, toHost(conv.vars["W"].data), 0)):
        amax = np.abs(Wf).max(axis=tuple(i for i in range(Wf.ndim) if i != axis))
        scale = np.where(amax > 0, amax / 127, 1).astype(np.float32)
        np.testing.assert_allclose(toHost(quantized.attrs["wScale"]), scale, rtol=1e-7)
        shaped = scale.reshape([-1 if i == axis else 1 for i in range(Wf.ndim)])
        np.testing.assert_array_equal(toHost(quantized.attrs["W"]), np.rint(Wf / shaped).astype(np.int8))
    np.testing.assert_allclose(toHost(quantizeModel(lin, "int8", [np.ones((1, 2), np.float32)]).attrs["wScale"]),
                               [0.02, 0.5 / 127, 1.0], rtol=1e-6)
    assert toHost(quantizeModel(lin, "int8", [np.ones((1, 2), np.float32)]).attrs["W"])[1, 0] == -qmax


def test_int8_conv_computes_the_float_conv_of_its_dequantised_weights_on_the_rounded_input():
    rng = np.random.default_rng(0)
    conv = Conv2D(4, 6, 3, stride=2, pad=1, groups=2)
    x = rng.standard_normal((3, 4, 7, 7)).astype(np.float32)
    int8 = quantizeModel(conv, "int8", [x])
    assert isinstance(int8, Int8Conv)
    inScale = float(toHost(int8.attrs["inScale"])[0])
    assert inScale == pytest.approx(np.abs(x).max() / 127)
    reference = Conv2D(4, 6, 3, stride=2, pad=1, groups=2)
    reference.vars["W"].data[...] = toDevice(toHost(int8.attrs["W"]).astype(np.float32)
                                             * toHost(int8.attrs["wScale"]).reshape(-1, 1, 1, 1))
    reference.vars["b"].data[...] = conv.vars["b"].data
    rounded = np.clip(np.rint(x / inScale), -127, 127).astype(np.float32) * np.float32(inScale)
    with int8.evaluating(), reference.evaluating():
        np.testing.assert_allclose(toHost(int8(toDevice(x))), toHost(reference(toDevice(rounded))),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(NotImplementedError, match="inference"):
        int8.backward(int8.data)


def test_percentile_calibration_clips_an_outlier_that_min_max_keeps():
    x = np.random.default_rng(0).uniform(-1, 1, (4, 256)).astype(np.float32)
    x[2, 7] = 50.0  # one outlier in 1024 values
    net = Sequential(Linear(256, 4))
    batches = [x[:2], x[2:]]
    minmax = activationRanges(net, batches, ["0"], "minmax")["0"]
    clipped = activationRanges(net, batches, ["0"], "percentile", percentile=99.0)["0"]
    assert minmax == pytest.approx(50.0)
    assert clipped == pytest.approx(np.percentile(np.abs(x), 99.0), abs=50.0 / 2048)
    assert clipped < 1.0 + 50.0 / 2048 < minmax / 40
    scales = [float(toHost(quantizeModel(net, "int8", batches, m, 99.0)[0].attrs["inScale"])[0])
              for m in ("minmax", "percentile")]
    assert scales == pytest.approx([minmax / 127, clipped / 127])


def test_bad_precision_and_missing_calibration_are_refused_clearly(trained):
    net = trained[0]
    with pytest.raises(ValueError, match="'float16', 'int8'.*'int4'"):
        quantizeModel(net, "int4")
    with pytest.raises(ValueError, match="int8 needs calibration batches"):
        quantizeModel(net, "int8")
    with pytest.raises(ValueError, match="calibration method"):
        quantizeModel(net, "int8", [np.zeros((1, 1, 8, 8), np.float32)], method="entropy")


def parseQuantize(argv):
    """`macrobatch quantize ARGV` parsed by a throwaway parser holding only the quantize subcommand."""
    p = argparse.ArgumentParser(prog="macrobatch")
    quantizeCli.addParser(p.add_subparsers(dest="command"))
    return p.parse_args(["quantize"] + argv)


@pytest.fixture
def files(trained, tmp_path):
    """The trained model's file and a calibration file holding 'data' and the test split."""
    net, batches, x, y = trained
    net.save(tmp_path / "model.h5", (1, 8, 8))
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["data"], f["test_data"], f["test_labels"] = np.concatenate(batches), x, y
    return tmp_path


def test_cli_refuses_a_bad_precision_and_a_missing_calibration_before_writing(files, capsys):
    with pytest.raises(SystemExit):
        parseQuantize([str(files / "model.h5"), "--to", "int4", "--out", "x.h5"])
    assert "invalid choice: 'int4'" in capsys.readouterr().err
    out = files / "int8.h5"
    args = parseQuantize([str(files / "model.h5"), "--to", "int8", "--out", str(out)])
    with pytest.raises(ValueError, match="--to int8 needs --calibrate"):
        args.run(args)
    args = parseQuantize([str(files / "model.h5"), "--to", "int8", "--out", str(out),
                                "--calibrate", str(files / "missing.h5")])
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        args.run(args)
    with h5py.File(files / "other.h5", "w") as f:
        f["inputs"] = np.zeros((4, 1, 8, 8), np.float32)
    args = parseQuantize([str(files / "model.h5"), "--to", "int8", "--out", str(out),
                                "--calibrate", str(files / "other.h5")])
    with pytest.raises(DatasetError, match="no dataset 'data'"):
        args.run(args)
    assert not out.exists()


def test_cli_writes_the_int8_model_file(files, capsys):
    out = files / "int8.h5"
    args = parseQuantize([str(files / "model.h5"), "--to", "int8", "--calibrate", str(files / "data.h5"),
                                "--out", str(out), "--percentile", "99.9"])
    args.run(args)
    assert "wrote" in capsys.readouterr().out
    assert isinstance(loadModel(out)[0], Int8Conv) and isinstance(loadModel(out)[-1], Int8Linear)


def test_file_sizes_are_measured_from_written_files():
    setSeed(0)
    net = Sequential(Linear(256, 256), Linear(256, 10))
    sizes = fileSizes(net, (256,))
    params = net.paramCount()
    assert sizes["float32"] > 4 * params and sizes["float16"] > 2 * params and sizes["int8"] > params
    assert sizes["int8"] < 0.3 * sizes["float32"] and sizes["float16"] < 0.55 * sizes["float32"]


def test_onnx_runtime_runs_the_int8_qdq_model_within_one_point(trained, tmp_path):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from macrobatch.deploy.onnxexport import exportOnnx
    from macrobatch.deploy.onnxquantize import quantizeOnnx
    net, batches, x, y = trained
    exportOnnx(net, tmp_path / "float.onnx", (1, 8, 8))
    quantizeOnnx(tmp_path / "float.onnx", tmp_path / "int8.onnx", batches, "percentile", 99.99)
    model = onnx.load(tmp_path / "int8.onnx")
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= ops
    assert any(init.data_type == onnx.TensorProto.INT8 and len(init.dims) == 4 for init in model.graph.initializer)
    session = onnxruntime.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"])
    scores = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert abs(float((scores.argmax(axis=1) == y).mean()) - accuracy(net, x, y)) <= 0.01


def test_summary_prints_the_model_file_size_at_each_precision(files, capsys):
    from macrobatch.cli import summary
    p = argparse.ArgumentParser(prog="macrobatch")
    summary.addParser(p.add_subparsers(dest="command"))
    args = p.parse_args(["summary", str(files / "model.h5"), "--runs", "0"])
    args.run(args)
    lines = capsys.readouterr().out.splitlines()
    sizes = {line.split("(")[1].split(")")[0]: int(line.split(": ")[1].split(" bytes")[0].replace(",", ""))
             for line in lines if line.startswith("Model file (")}
    assert list(sizes) == ["float32", "float16", "int8"]
    assert sizes["float32"] == os.path.getsize(files / "model.h5")
    assert max(sizes["int8"], sizes["float16"]) < sizes["float32"]  # a tiny model: HDF5 metadata weighs most


def test_precision_table_measures_every_precision_from_its_files(trained, tmp_path):
    from macrobatch.deploy.precisiontable import cpuName, formatTable, measurePrecisions
    net, batches, x, y = trained
    onnx = quantizeCli.onnxAvailable()
    rows = measurePrecisions(net, (1, 8, 8), batches, x, y, str(tmp_path), batchsizes=(2,), onnx=onnx, rounds=1)
    assert [row["precision"] for row in rows] == ["float32", "float16", "int8"]
    assert [row["fileBytes"] for row in rows] == [os.path.getsize(tmp_path / f"{p}.h5") for p in
                                                  ("float32", "float16", "int8")]
    assert all(abs(row["accuracy"] - rows[0]["accuracy"]) <= 0.01 and row["speed"][2] > 0 for row in rows)
    assert ("onnxSpeed" in rows[2]) == onnx and "onnxSpeed" not in rows[1]
    table = formatTable(rows, "small CNN", cpuName())
    assert table.startswith("**small CNN** — ") and table.count("\n| ") == 4 and "(1.00×)" in table
