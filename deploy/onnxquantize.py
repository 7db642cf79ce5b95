"""quantizeOnnx: an int8 QDQ ONNX model for ONNX Runtime, from a float ONNX model and calibration batches."""
import os
import tempfile

import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quant_pre_process, quantize_static)

from .calibration import methods


class BatchReader(CalibrationDataReader):
    """Feeds host batches to ONNX Runtime's calibrator under the model's input name."""

    def __init__(self, inputName, batches):
        self.feeds = iter([{inputName: batch} for batch in batches])

    def get_next(self):
        return next(self.feeds, None)


def quantizeOnnx(floatPath, path, batches, method="minmax", percentile=99.99):
    """Write to path the QDQ int8 version of the float ONNX model at floatPath, made by ONNX Runtime's
    quantize_static: the model pre-processed first (shape inference, BatchNorm folded into Conv), weights
    int8 symmetric per output channel, activations int8 with ranges from batches (float32 host arrays of
    the model's one input) by method 'minmax' or 'percentile' (at percentile), as in
    calibration.activationRanges. Activations take a zero point (asymmetric, unlike macrobatch's own int8
    layers): a ReLU's output then starts at the bottom of the int8 range and ONNX Runtime folds the ReLU
    into the int8 op before it, which a symmetric range prevents (LeNet-28 batch 128 ran at about 0.4x the
    speed). ONNX Runtime fuses each DequantizeLinear-op-QuantizeLinear group into an int8 kernel
    (QLinearConv, QGemm: VNNI where the CPU has it). The file is written under a temporary name beside path
    and renamed; errors come before anything is written.
    """
    if method not in methods:
        raise ValueError(f"calibration method must be one of {', '.join(map(repr, methods))}, got {method!r}")
    batches = list(batches)
    if not batches:
        raise ValueError("calibration needs at least one batch")
    inputs = onnx.load(os.fspath(floatPath), load_external_data=False).graph.input
    if len(inputs) != 1:
        raise ValueError(f"{floatPath}: quantizeOnnx calibrates models of one input, this one has {len(inputs)}")
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".quantize-") as scratch:
        prepared, out = os.path.join(scratch, "prepared.onnx"), os.path.join(scratch, "int8.onnx")
        quant_pre_process(os.fspath(floatPath), prepared)
        quantize_static(prepared, out, BatchReader(inputs[0].name, batches), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile if method == "percentile"
                        else CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                       "CalibPercentile": percentile})
        os.replace(out, path)
