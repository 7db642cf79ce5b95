"""Wire16: the 16-bit words gradients are all-reduced in, against PyTorch's float16 and bfloat16."""
import numpy as np
import pytest
import torch

from macrobatch.engine.wire16 import Wire16


def values():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(20000) * 10.0 ** rng.integers(-30, 30, 20000)
    x = x.astype(np.float32)
    x[:6] = [0.0, -0.0, np.inf, -np.inf, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8]  # ties: to even, down then up
    return x


@pytest.mark.parametrize("kind", ["float16", "bfloat16"])
def test_round_trip_equals_torch_rounding(kind):
    x = values()
    if kind == "float16":
        x = x[np.abs(x) < 6e4]  # float16 overflows beyond 65504, as torch's cast
    wire = Wire16(kind)
    bits = np.empty(x.size, np.uint16)
    with np.errstate(over="ignore"):
        decoded = wire.decode(wire.encode(x, bits), np.empty_like(x))
    expected = torch.from_numpy(x).to(getattr(torch, kind)).float().numpy()
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize("kind", ["float16", "bfloat16"])
def test_add_into_sums_like_torch(kind):
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal(1000).astype(np.float32) for _ in range(2))
    wire = Wire16(kind)
    wa, wb = np.empty(1000, np.uint16), np.empty(1000, np.uint16)
    wire.encode(a, wa)
    wire.encode(b, wb)
    wire.addInto(wa, wb)
    dtype = getattr(torch, kind)
    expected = (torch.from_numpy(a).to(dtype).float() + torch.from_numpy(b).to(dtype).float()).to(dtype).float()
    np.testing.assert_array_equal(wire.decode(wb, np.empty(1000, np.float32)), expected.numpy())


def test_bad_kind_and_dtype_are_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        Wire16("int8")
    with pytest.raises(TypeError, match="must be float32, got float64"):
        Wire16("bfloat16").encode(np.zeros(3), np.empty(3, np.uint16))
