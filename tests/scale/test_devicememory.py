"""A macrobatch too large for the device fails with DeviceMemoryError naming the size asked, the bytes it
needs, the free memory and the largest macroBatchSize that fits; never a hang or a bare CuPy error."""
import numpy as np
import pytest

from macrobatch.engine import backend, transfer
from macrobatch.engine.errors import DeviceMemoryError, MacrobatchError
from macrobatch.engine.transfer import Uploader, deviceMemoryError, fittingMacroBatchSize


def test_message_names_asked_size_needed_bytes_free_bytes_and_largest_fitting_size():
    sampleBytes = 3 * 32 * 32 * 4 + 8  # a CIFAR image in float32 and an int64 label
    error = deviceMemoryError(100000, sampleBytes, freeBytes=2 * 2 ** 30)
    assert isinstance(error, MacrobatchError) and isinstance(error, MemoryError)
    message = str(error)
    fits = (2 * 2 ** 30) // (2 * sampleBytes)
    assert "macroBatchSize 100000 does not fit in device memory" in message
    assert f"({2 * 100000 * sampleBytes} bytes)" in message and "2.29 GiB" in message  # two slots
    assert f"({2 * 2 ** 30} bytes) is free" in message
    assert f"largest macroBatchSize whose buffers fit is {fits}" in message


@pytest.mark.parametrize("freeBytes", [0, 1, 12287, 12288, 12289, 10 ** 9 + 7])
def test_largest_fitting_size_is_the_largest_whose_two_slots_fit(freeBytes):
    sampleBytes = 6144
    fits = fittingMacroBatchSize(sampleBytes, freeBytes)
    assert 2 * fits * sampleBytes <= freeBytes < 2 * (fits + 1) * sampleBytes


def test_no_sample_fitting_says_so_instead_of_suggesting_zero():
    message = str(deviceMemoryError(1000, 4096, freeBytes=100))
    assert "Not even one sample fits" in message and "fit is 0" not in message


def test_uploader_counts_data_and_target_bytes_and_its_own_buffers_as_free(monkeypatch):
    freeBytes = 10 ** 6
    monkeypatch.setattr(transfer, "freeMemoryBytes", lambda: freeBytes)
    uploader = Uploader(5000)
    uploader.slots[0][("device", 0)] = np.empty((5000, 16), np.float32)  # slot 0 allocated, slot 1 failed
    blocks = [np.zeros((10, 16), np.float64), np.zeros(10, np.int64)]
    message = str(uploader.outOfMemory(blocks, [np.float32, None]))
    sampleBytes = 16 * 4 + 8  # data converted to float32, target kept as int64
    assert f"5000 samples x {sampleBytes} bytes" in message
    assert f"fit is {(freeBytes + 5000 * 16 * 4) // (2 * sampleBytes)}" in message


@pytest.mark.cuda
def test_oversized_macrobatch_on_the_device_raises_device_memory_error():
    total = backend.xp.cuda.runtime.memGetInfo()[1]
    sampleBytes = 4096 * 4
    uploader = Uploader(2 * total // sampleBytes)  # one slot alone is twice the device
    with pytest.raises(DeviceMemoryError, match="does not fit in device memory") as info:
        uploader.stage([np.zeros((4, 4096), np.float32)], [np.float32])
    assert f"{sampleBytes} bytes" in str(info.value)
