"""Data dtypes: what converts to float32 safely and what is refused, on the host and device paths alike."""
import re

import numpy as np
import pytest

from macrobatch.costs import MSE
from macrobatch.engine import backend, toDevice
from macrobatch.engine.errors import DtypeError
from macrobatch.handlers import Calculator, Validator


def seenDtypes(trainer):
    """Record the dtype of every batch the trainer handles."""
    seen = []
    handleBatch = trainer.handleBatch
    trainer.handleBatch = lambda batch, idx, state: seen.append(batch[0].dtype) or handleBatch(batch, idx, state)
    return seen


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64, np.int8, np.uint16, np.bool_])
@pytest.mark.parametrize("resident", [False, True])
def test_float_integer_and_bool_data_train_as_float32_like_the_same_values_given_in_float32(
        classifier, blobs, weights, sameWeights, dtype, resident):
    data, labels = blobs(100)
    data = np.clip(np.round(data), -1, 1) if dtype is np.bool_ or np.dtype(dtype).kind in "iu" else data
    data = data.astype(np.float64).astype(dtype) if dtype is not np.bool_ else data > 0
    results = []
    for given in (data, data.astype(np.float32)):
        net, trainer = classifier()
        seen = seenDtypes(trainer)
        if resident:
            trainer.train(toDevice(given), toDevice(labels), random=False)
        else:
            trainer.trainFromHost(given, labels, macroBatchSize=100, random=False)
        assert set(seen) == {np.dtype(np.float32)}
        results.append(weights(net))
    assert sameWeights(*results)


BAD = {"complex": np.ones((20, 8), np.complex64), "string": np.full((20, 8), "1.0"),
       "bytes": np.full((20, 8), b"1"), "object": np.ones((20, 8)).astype(object),
       "datetime": np.zeros((20, 8), "datetime64[s]")}


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("call", ["trainFromHost", "train", "validateFromHost", "validate", "calcFromHost", "calc"])
def test_complex_string_object_and_date_data_are_refused_naming_the_dtype_before_any_update(
        classifier, weights, sameWeights, kind, call):
    data = BAD[kind]
    labels = np.zeros(20, np.int64)
    if not call.endswith("FromHost"):
        if backend.isCuda and kind != "complex":
            pytest.skip(f"CuPy has no device arrays of {kind} data: only the host path can meet it")
        data, labels = toDevice(data), toDevice(labels)
    net, trainer = classifier(batchsize=10)
    before = weights(net)
    handler = {"t": trainer, "v": Validator(net, trainer.cost, batchsize=10), "c": Calculator(net, batchsize=10)}[call[0]]
    args = (data,) if call.startswith("calc") else (data, labels)
    with pytest.raises(DtypeError, match="^" + re.escape(f"data: dtype {data.dtype} cannot be used as float32 input")):
        getattr(handler, call)(*args)
    assert sameWeights(before, weights(net))


@pytest.mark.parametrize("resident", [False, True])
def test_complex_regression_targets_are_refused_naming_the_cost_and_dtype(classifier, blobs, weights, sameWeights,
                                                                         resident):
    data, _ = blobs(40)
    target = np.ones((40, 3), np.complex128)
    net, trainer = classifier(batchsize=10, cost=MSE())
    before = weights(net)
    with pytest.raises(DtypeError, match="MSE: targets of dtype complex128 cannot be used as float32"):
        if resident:
            trainer.train(toDevice(data), toDevice(target))
        else:
            trainer.trainFromHost(data, target, macroBatchSize=20)
    assert sameWeights(before, weights(net))
