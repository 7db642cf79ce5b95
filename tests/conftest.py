"""Every test starts from the same seed; tests marked ``cuda`` are skipped unless the backend is CuPy;
``hostWaits`` counts the host's waits for the device (with the CPU stand-in for CuPy)."""
import pytest

from macrobatch.engine import backend, setSeed


@pytest.fixture(autouse=True)
def seeded():
    setSeed(1234)


def pytest_collection_modifyitems(config, items):
    if backend.isCuda:
        return
    skip = pytest.mark.skip(reason="needs the CuPy backend on a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def hostWaits(monkeypatch):
    """A function returning how many times the host has waited for the device so far: the CPU stand-in's
    count of synchronisations (float(), .get(), .item() ... of device arrays) plus boolean-mask indexing,
    which real CuPy resolves by reading the mask's count back and which the stand-in does not count."""
    stats = getattr(getattr(backend.xp, "_core", None), "stats", None)
    if stats is None:
        pytest.skip("counts with the CPU stand-in's counters (cupy._core.stats): NumPy never waits for a device, "
                    "and real CuPy keeps no such count")
    ndarray, masks = backend.xp.ndarray, []

    def counting(method):
        def indexed(self, index, *value):
            if any(isinstance(part, ndarray) and part.dtype == bool
                   for part in (index if isinstance(index, tuple) else (index,))):
                masks.append(index)
            return method(self, index, *value)
        return indexed

    monkeypatch.setattr(ndarray, "__getitem__", counting(ndarray.__getitem__))
    monkeypatch.setattr(ndarray, "__setitem__", counting(ndarray.__setitem__))
    return lambda: stats()["syncs"] + len(masks)
