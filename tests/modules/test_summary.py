import numpy as np
import pytest

from macrobatch import models
from macrobatch.engine import toDevice, toHost
from macrobatch.engine.errors import ShapeError
from macrobatch.modules.activation import Activation
from macrobatch.modules.batchnorm import BatchNorm
from macrobatch.modules.batchnorm2d import BatchNorm2D
from macrobatch.modules.conv2d import Conv2D
from macrobatch.modules.dropout import Dropout
from macrobatch.modules.flatten import Flatten
from macrobatch.modules.linear import Linear
from macrobatch.modules.maxpool2d import MaxPool2D
from macrobatch.modules.reshape import Reshape
from macrobatch.modules.sequential import Sequential
from macrobatch.modules.summary import (estimate, formatSummary, inferInputShape, inputShapeFor, memoryBytes,
                                        parseShape, summary)


def mlpNet():
    return Sequential(Flatten(), Linear(20, 16), Activation("relu"), Dropout(0.5), Linear(16, 3))


def cnnNet():
    return Sequential(Conv2D(1, 4, 3, pad=1), BatchNorm2D(4), Activation("relu"), MaxPool2D(2), Flatten(),
                      Linear(4 * 4 * 4, 10))


def rows(info):
    return [(r["name"], r["type"], r["outShape"], r["paramCount"]) for r in info["rows"]]


def test_mlp_summary_lists_each_leaf_with_output_shape_and_parameter_count():
    info = summary(mlpNet(), (20,), batchsize=4)
    assert rows(info) == [("0", "Flatten", (4, 20), 0),
                          ("1", "Linear", (4, 16), 20 * 16 + 16),
                          ("2", "Activation", (4, 16), 0),
                          ("3", "Dropout", (4, 16), 0),
                          ("4", "Linear", (4, 3), 16 * 3 + 3)]
    assert info["inputShape"] == (4, 20) and info["outputShape"] == (4, 3)
    assert info["paramCount"] == 387


def test_cnn_summary_lists_each_leaf_with_output_shape_and_parameter_count():
    info = summary(cnnNet(), (1, 8, 8), batchsize=2)
    assert rows(info) == [("0", "Conv2D", (2, 4, 8, 8), 4 * 1 * 3 * 3 + 4),
                          ("1", "BatchNorm2D", (2, 4, 8, 8), 4 + 4),
                          ("2", "Activation", (2, 4, 8, 8), 0),
                          ("3", "MaxPool2D", (2, 4, 4, 4), 0),
                          ("4", "Flatten", (2, 64), 0),
                          ("5", "Linear", (2, 10), 64 * 10 + 10)]
    assert info["outputShape"] == (2, 10)
    assert info["paramCount"] == 698


def test_summary_memory_is_parameter_count_times_dtype_size():
    info = summary(cnnNet(), (1, 8, 8))
    assert info["memory"] == {"float32": 698 * 4, "float16": 698 * 2, "int8": 698}
    assert memoryBytes(10) == {"float32": 40, "float16": 20, "int8": 10}


def test_nested_containers_give_dotted_paths_and_only_leaves_are_rows():
    net = Sequential(Sequential(Linear(3, 4), Activation("tanh"), name="block"), Linear(4, 2))
    assert rows(summary(net, (3,))) == [("block.0", "Linear", (1, 4), 16),
                                        ("block.1", "Activation", (1, 4), 0),
                                        ("1", "Linear", (1, 2), 10)]


def test_a_single_layer_is_its_own_only_row():
    info = summary(Linear(5, 2), (5,), batchsize=3)
    assert rows(info) == [("", "Linear", (3, 2), 12)]
    assert formatSummary(info).splitlines()[2].startswith("Linear ")


def test_shared_variables_count_once_in_the_total():
    first, second = Linear(4, 4), Linear(4, 4)
    second.vars = first.vars
    info = summary(Sequential(first, second), (4,))
    assert [r["paramCount"] for r in info["rows"]] == [20, 20]
    assert info["paramCount"] == 20


def test_summary_runs_in_the_parameters_dtype():
    info = summary(mlpNet().cast(np.float64), (20,))
    assert info["outputShape"] == (1, 3)


def test_summary_and_estimate_run_in_eval_mode_and_restore_every_modules_mode():
    net = cnnNet().trainMode()
    net[3].train = False  # a mixed tree: each module must get its own flag back
    before = [mod.train for _, mod in net.namedModules()]
    bn = net[1]
    mean, var = toHost(bn.attrs["mean"]).copy(), toHost(bn.attrs["var"]).copy()
    summary(net, (1, 8, 8), batchsize=2)
    estimate(net, (1, 8, 8), batchsize=2, runs=3, warmup=1)
    # a train-mode pass on zeros would move the running statistics (var towards 0)
    np.testing.assert_array_equal(toHost(bn.attrs["mean"]), mean)
    np.testing.assert_array_equal(toHost(bn.attrs["var"]), var)
    assert [mod.train for _, mod in net.namedModules()] == before


def test_bad_input_shape_raises_the_modules_own_shape_error_and_restores_the_mode():
    net = mlpNet().trainMode()
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 20\), got \(1, 64\)"):
        summary(net, (64,))
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 20\), got \(2, 7\)"):
        estimate(net, (7,), batchsize=2, runs=2)
    assert all(mod.train for _, mod in net.namedModules())
    with pytest.raises(ShapeError, match=r"Conv2D .0.: expected input of shape \(batch, 1, height, width\), got \(1, 3, 8, 8\)"):
        summary(cnnNet(), (3, 8, 8))


def test_malformed_shapes_and_counts_are_refused():
    with pytest.raises(ValueError, match="positive ints"):
        summary(mlpNet(), (0,))
    with pytest.raises(ValueError, match="positive ints"):
        summary(mlpNet(), ())
    with pytest.raises(ValueError, match="batchsize"):
        summary(mlpNet(), (20,), batchsize=0)
    with pytest.raises(ValueError, match="runs"):
        estimate(mlpNet(), (20,), runs=0)
    with pytest.raises(ValueError, match="warmup"):
        estimate(mlpNet(), (20,), warmup=-1)


def test_estimate_times_the_requested_runs_after_warmup_and_reports_positive_latencies():
    net = mlpNet()
    calls = []
    forward = net.updateData
    net.updateData = lambda data: calls.append(data.shape) or forward(data)
    result = estimate(net, (20,), batchsize=8, runs=5, warmup=2)
    assert calls == [(8, 20)] * 7
    assert result["paramCount"] == 387
    assert result["memory"] == {"float32": 387 * 4, "float16": 387 * 2, "int8": 387}
    assert result["meanLatency"] > 0 and result["medianLatency"] > 0
    assert result["samplesPerSecond"] == pytest.approx(8 / result["meanLatency"])
    assert (result["batchsize"], result["runs"]) == (8, 5)


def test_format_summary_is_a_table_with_totals_memory_and_speed():
    net = cnnNet()
    info = summary(net, (1, 8, 8), batchsize=2)
    text = formatSummary(info)
    lines = text.splitlines()
    assert lines[0].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]
    assert set(lines[1]) == {"="}
    assert lines[2].split() == ["0", "(Conv2D)", "(2,", "4,", "8,", "8)", "40"]
    assert lines[7].split() == ["5", "(Linear)", "(2,", "10)", "650"]
    assert set(lines[8]) == {"="}
    assert "Total params: 698" in lines
    assert "Memory (float32, 4 B per param): 2,792 bytes (2.7 KiB)" in lines
    assert "Memory (float16, 2 B per param): 1,396 bytes (1.4 KiB)" in lines
    assert "Memory (int8, 1 B per param): 698 bytes (698 B)" in lines
    assert "Latency" not in text
    speed = {"batchsize": 2, "runs": 5, "meanLatency": 0.002, "medianLatency": 0.001, "samplesPerSecond": 1000.0}
    assert formatSummary(info, speed).splitlines()[-1] == \
        "Latency (batch 2, 5 runs): mean 2.000 ms, median 1.000 ms, 1,000 samples/s"


def test_a_layer_the_forward_never_reaches_shows_no_shape():
    net = Sequential(Linear(3, 2))
    unused = Linear(9, 9)
    unused(toDevice(np.zeros((1, 9), np.float32)))  # an old output must not be reported as this forward's
    net.children = lambda: {"0": net[0], "spare": unused}
    info = summary(net, (3,))
    assert rows(info)[1] == ("spare", "Linear", None, 90)
    assert "spare (Linear)   -" in formatSummary(info)


def test_input_shape_is_inferred_from_a_leading_vector_layer():
    assert inferInputShape(Linear(7, 2)) == (7,)
    assert inferInputShape(models.mlp(64, 10)) == (64,)
    assert inferInputShape(Sequential(Activation("relu"), Dropout(), Linear(5, 2))) == (5,)
    assert inferInputShape(Sequential(BatchNorm(6), Linear(6, 2))) == (6,)
    assert inferInputShape(Sequential(Sequential(Linear(3, 4), name="block"), Linear(4, 2))) == (3,)


def test_input_shape_is_not_inferred_when_the_first_layer_does_not_fix_it():
    assert inferInputShape(models.smallCNN((1, 8, 8), 10)) is None
    assert inferInputShape(Sequential(BatchNorm2D(3), Flatten(), Linear(12, 2))) is None
    assert inferInputShape(Sequential(Reshape((-1,)), Linear(12, 2))) is None
    assert inferInputShape(Sequential()) is None


def test_input_shape_for_prefers_the_given_shape_and_asks_for_one_when_it_cannot_infer():
    cnn = models.smallCNN((1, 8, 8), 10)
    assert inputShapeFor(cnn, np.zeros((5, 1, 8, 8)).shape[1:]) == (1, 8, 8)
    assert inputShapeFor(mlpNet()) == (20,)
    with pytest.raises(ShapeError, match="cannot be inferred.*--shape"):
        inputShapeFor(cnn)


def test_parse_shape_reads_comma_separated_sizes():
    assert parseShape("1,28,28") == (1, 28, 28)
    assert parseShape("784") == (784,)
    with pytest.raises(ValueError, match="comma-separated"):
        parseShape("1x28x28")
    with pytest.raises(ValueError, match="positive ints"):
        parseShape("1,0,28")
