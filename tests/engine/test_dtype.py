"""engine.dtype: which dtypes count as floats, and bfloat16 (ml_dtypes' NumPy type, kind 'V') among them
on the NumPy backend only."""
import sys

import numpy as np
import pytest

from macrobatch.engine import dtype
from macrobatch.engine.backend import isCuda, toDevice, toHost
from macrobatch.engine.dtype import bfloat16Dtype, checkFloat, hostCastable, isFloat, precisionDtype
from macrobatch.engine.errors import DtypeError
from macrobatch.modules import Linear

ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 is ml_dtypes' (pip install macrobatch[bfloat16])")
bf16 = np.dtype(ml_dtypes.bfloat16)


def test_bfloat16_is_ml_dtypes_type_on_numpy_and_refused_with_the_reason_on_cuda():
    mod = Linear(3, 2)
    if not isCuda:
        assert bfloat16Dtype("here") == precisionDtype("bfloat16", "here") == bf16
        checkFloat(bf16, "here")
        assert mod.cast(bf16).dtype == bf16
        return
    with pytest.raises(DtypeError) as info:
        bfloat16Dtype("here")
    for reason in ("cudasim", "cupy PR #10317", "col2im, maxpool_grad, avgpool and avgpool_grad",
                   "use precision='float16' on the GPU"):
        assert reason in str(info.value)
    for refuse in (lambda: checkFloat(bf16, "here"), lambda: precisionDtype("bfloat16", "here"),
                   lambda: mod.cast(bf16)):
        with pytest.raises(DtypeError, match="bfloat16 runs on the NumPy backend only"):
            refuse()
    assert mod.dtype == np.float32  # refused before anything changed


def test_without_ml_dtypes_bfloat16_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # import ml_dtypes now raises ImportError
    monkeypatch.setattr(dtype, "isCuda", False)  # the NumPy backend's answer, on either backend
    for ask in (lambda: bfloat16Dtype("here"), lambda: precisionDtype("bfloat16", "here")):
        with pytest.raises(DtypeError, match=r"^here: bfloat16 needs the ml_dtypes package \(pip install ml_dtypes"):
            ask()


@pytest.mark.parametrize("bad", [np.int32, np.bool_, np.complex64, "V2"])
def test_checkFloat_refuses_what_is_not_a_float(bad):
    with pytest.raises(DtypeError, match="here: expected a floating dtype"):
        checkFloat(bad, "here")


def test_bfloat16_is_a_float_for_host_uploads_and_finiteness_checks():
    assert all(isFloat(t) for t in (np.float16, np.float32, np.float64, bf16))
    assert not any(isFloat(t) for t in (np.int32, np.bool_, "V2", "U3"))
    for src in (bf16, np.float32, np.int64, np.bool_):
        assert hostCastable(src, bf16) and hostCastable(src, np.float32)
    assert not hostCastable("V2", np.float32) and not hostCastable(np.float32, np.int32)
