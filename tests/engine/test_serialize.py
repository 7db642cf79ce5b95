"""HDF5 writes are atomic: a failure mid-write leaves the previous file as it was."""
import h5py
import numpy as np
import pytest

from macrobatch.engine import serialize
from macrobatch.engine.errors import DatasetError


def test_atomic_write_replaces_file_only_on_success(tmp_path):
    path = tmp_path / "f.h5"
    with serialize.atomicH5(path) as f:
        f["x"] = np.arange(3)
    with pytest.raises(RuntimeError):
        with serialize.atomicH5(path) as f:
            f["x"] = np.arange(100)
            raise RuntimeError("crash mid-save")
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["x"][()], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]  # no temporary left behind


def test_opening_a_missing_or_non_hdf5_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        serialize.openH5(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DatasetError, match="text.h5: not a readable HDF5 file"):
        serialize.openH5(tmp_path / "text.h5")


def test_missing_dataset_error_lists_what_the_file_holds(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["images"] = np.zeros(2)
    with serialize.openH5(tmp_path / "d.h5") as f:
        with pytest.raises(DatasetError, match=r"no dataset 'data'; it holds \['images'\]"):
            serialize.getDataset(f, "data")


def test_nested_state_round_trips_arrays_numbers_strings_and_none(tmp_path):
    state = {"epoch": 3, "rate": 0.5, "name": "adam", "none": None, "history": {"loss": [1.0, 0.5]},
             "weights": {"W": np.arange(6, dtype=np.float32).reshape(2, 3), "steps": 7}}
    with serialize.atomicH5(tmp_path / "s.h5") as f:
        serialize.writeState(f.create_group("state", track_order=True), state)
    with h5py.File(tmp_path / "s.h5") as f:
        back = serialize.readState(f["state"])
    assert list(back) == list(state) and list(back["history"]) == ["loss"]
    np.testing.assert_array_equal(back["weights"].pop("W"), state["weights"].pop("W"))
    assert back == state
