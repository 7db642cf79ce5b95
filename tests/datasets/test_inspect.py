"""inspectH5: every number checked against a direct NumPy computation on the same arrays."""
import sys

import h5py
import numpy as np
import pytest

from macrobatch.datasets.inspect import classHistogram, formatReport, inspectH5, readRows, sampleSpans
from macrobatch.engine.errors import DatasetError, LabelError

classCounts = {0: 25, 1: 15, 2: 10}


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((50, 3, 4)).astype(np.float32) * 3 + 1
    data[10] = data[11] = data[0]  # three duplicate rows: two copies of row 0, one of row 5
    data[20] = data[5]
    data[3, 1, 2] = np.nan
    data[7, 0, 0] = np.inf
    data[8, 2, 3] = -np.inf
    labels = rng.permutation(np.repeat(list(classCounts), list(classCounts.values()))).astype(np.int64)
    values = rng.integers(-1000, 1000, size=20).astype(np.int32)
    return {"data": data, "labels": labels, "group/sub/values": values,
            "group/names": np.array([b"cat", b"dog", b"cat", b"bird"], dtype=object)}


@pytest.fixture
def path(tmp_path, arrays):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=arrays["data"], chunks=(8, 3, 4), compression="gzip", compression_opts=4)
        f["labels"] = arrays["labels"]
        f["group/sub/values"] = arrays["group/sub/values"]
        f.create_dataset("group/names", data=arrays["group/names"], dtype=h5py.string_dtype())
    return path


def byName(info):
    return {entry["name"]: entry for entry in info["datasets"]}


def finiteStats(ary):
    values = ary[np.isfinite(ary)].astype(np.float64)
    return values.size, values.min(), values.max(), values.mean(), values.std()


def duplicateCount(ary):
    rows = np.ascontiguousarray(ary).reshape(len(ary), -1)
    return len(rows) - len(np.unique(rows.view(np.dtype((np.void, rows.strides[0]))).ravel()))


def test_every_dataset_in_nested_groups_is_listed_with_its_layout(path, arrays):
    info = inspectH5(path)
    assert info["path"] == str(path)
    entries = byName(info)
    assert list(entries) == ["data", "group/names", "group/sub/values", "labels"]
    for name, ary in arrays.items():
        assert entries[name]["shape"] == ary.shape
    assert entries["data"]["dtype"] == "float32" and entries["labels"]["dtype"] == "int64"
    assert entries["group/names"]["dtype"] == "string (utf-8, variable length)"
    assert entries["data"]["chunks"] == (8, 3, 4) and entries["data"]["compression"] == "gzip"
    assert entries["data"]["compressionOpts"] == 4
    assert entries["labels"]["chunks"] is None and entries["labels"]["compression"] is None
    assert entries["labels"]["storageBytes"] == arrays["labels"].nbytes  # contiguous: stored as is
    with h5py.File(path) as f:
        assert entries["data"]["storageBytes"] == f["data"].id.get_storage_size() > 0


def test_float_statistics_cover_the_finite_values_and_count_nan_and_inf(path, arrays):
    entry = byName(inspectH5(path))["data"]
    count, low, high, mean, std = finiteStats(arrays["data"])
    assert entry["stats"]["count"] == count == arrays["data"].size - 3
    assert entry["stats"]["min"] == low and entry["stats"]["max"] == high
    assert entry["stats"]["mean"] == pytest.approx(mean, rel=1e-12)
    assert entry["stats"]["std"] == pytest.approx(std, rel=1e-12)
    assert entry["nan"] == np.isnan(arrays["data"]).sum() == 1
    assert entry["inf"] == np.isinf(arrays["data"]).sum() == 2


def test_integer_statistics_are_exact_in_min_and_max(path, arrays):
    entry = byName(inspectH5(path))["group/sub/values"]
    values = arrays["group/sub/values"]
    assert entry["stats"]["min"] == int(values.min()) and isinstance(entry["stats"]["min"], int)
    assert entry["stats"]["max"] == int(values.max()) and isinstance(entry["stats"]["max"], int)
    assert entry["stats"]["mean"] == pytest.approx(values.astype(np.float64).mean(), rel=1e-12)
    assert entry["stats"]["std"] == pytest.approx(values.astype(np.float64).std(), rel=1e-12)
    assert entry["nan"] == entry["inf"] == 0 and entry["classes"] is None


@pytest.mark.parametrize("chunkBytes", [1, 8 * 12 * 3, 8 * 12 * 7])
def test_chunked_statistics_equal_the_in_memory_ones(path, arrays, chunkBytes):
    # 1 row, 3 rows and 7 rows per read (7 is under one HDF5 chunk of 8 rows; the last read is short)
    chunked, whole = byName(inspectH5(path, chunkBytes=chunkBytes)), byName(inspectH5(path, chunkBytes=1 << 30))
    for name in ("data", "labels", "group/sub/values"):
        for key in ("count", "min", "max"):
            assert chunked[name]["stats"][key] == whole[name]["stats"][key]
        for key in ("mean", "std"):
            assert chunked[name]["stats"][key] == pytest.approx(whole[name]["stats"][key], rel=1e-12)
        assert (chunked[name]["nan"], chunked[name]["inf"]) == (whole[name]["nan"], whole[name]["inf"])
        assert chunked[name]["classes"] == whole[name]["classes"]
        assert chunked[name]["duplicates"] == whole[name]["duplicates"]
    count, low, high, mean, std = finiteStats(arrays["data"])
    assert chunked["data"]["stats"]["mean"] == pytest.approx(mean, rel=1e-12)
    assert chunked["data"]["stats"]["std"] == pytest.approx(std, rel=1e-12)


def test_reads_are_whole_hdf5_chunks_where_they_fit(path):
    with h5py.File(path) as f:
        assert readRows(f["data"], 8 * 12 * 13) == 8  # 13 rows fit: one 8-row chunk, not 1.6
        assert readRows(f["data"], 8 * 12 * 17) == 16
        assert readRows(f["data"], 8 * 12 * 5) == 5  # under one chunk: the rows that fit
        assert readRows(f["labels"], 8 * 13) == 13  # contiguous: no rounding


def test_chunked_variance_stays_accurate_with_a_large_offset(tmp_path):
    # sum-of-squares formulas lose every digit here; the pairwise merge keeps them
    values = 1e8 + np.random.default_rng(1).standard_normal(1000)
    with h5py.File(tmp_path / "offset.h5", "w") as f:
        f["x"] = values
    entry = inspectH5(tmp_path / "offset.h5", chunkBytes=8 * 7)["datasets"][0]
    assert entry["stats"]["std"] == pytest.approx(values.std(), rel=1e-6)


def test_labels_are_counted_per_class(path, arrays):
    entries = byName(inspectH5(path))
    assert entries["labels"]["classes"] == classCounts
    assert list(entries["labels"]["classes"]) == [0, 1, 2]
    values, counts = np.unique(arrays["labels"], return_counts=True)
    assert entries["labels"]["classes"] == dict(zip(values.tolist(), counts.tolist()))
    assert entries["labels"]["duplicates"] is None  # repeated labels are not duplicate samples
    assert all(entries[name]["classes"] is None for name in ("data", "group/sub/values", "group/names"))


def test_labels_named_explicitly_replace_the_name_rule(path, arrays):
    entries = byName(inspectH5(path, labels=["/group/sub/values"]))
    values, counts = np.unique(arrays["group/sub/values"], return_counts=True)
    assert entries["group/sub/values"]["classes"] == dict(zip(values.tolist(), counts.tolist()))
    assert entries["labels"]["classes"] is None
    assert byName(inspectH5(path, labels="labels"))["labels"]["classes"] == classCounts


def test_naming_a_missing_or_non_integer_labels_dataset_is_a_clear_error(path):
    with pytest.raises(DatasetError, match=r"no dataset 'target' to count labels in; it holds \['data', "):
        inspectH5(path, labels=["target"])
    with pytest.raises(LabelError, match=r"'data' cannot be counted as labels: .* got float32 of shape \(50, 3, 4\)"):
        inspectH5(path, labels=["data"])


def test_float_or_2d_datasets_named_labels_are_not_counted(tmp_path):
    with h5py.File(tmp_path / "onehot.h5", "w") as f:
        f["labels"] = np.eye(3, dtype=np.int64)
        f["soft_labels"] = np.zeros(3, np.float32)
    assert all(entry["classes"] is None for entry in inspectH5(tmp_path / "onehot.h5")["datasets"])


def test_duplicate_rows_of_a_small_dataset_are_counted_over_all_rows(path, arrays):
    entries = byName(inspectH5(path))
    dup = entries["data"]["duplicates"]
    assert dup["count"] == duplicateCount(arrays["data"]) == 3
    assert (dup["sample"], dup["rows"], dup["blocks"]) == (50, 50, 1)
    assert dup["fraction"] == pytest.approx(3 / 50)
    assert entries["group/sub/values"]["duplicates"]["count"] == duplicateCount(arrays["group/sub/values"])


def test_sample_blocks_are_contiguous_evenly_spaced_and_disjoint():
    assert sampleSpans(50, 10000) == [(0, 50)]
    assert sampleSpans(0, 10000) == []
    assert sampleSpans(1000, 100) == [(0, 100)]  # too few rows for two blocks of 64: the first rows
    spans = sampleSpans(1_000_000, 10000)
    assert len(spans) == 16 and all(stop - start == 625 for start, stop in spans)
    assert [start for start, _ in spans] == [i * 62500 for i in range(16)]
    for rows, sampleSize in [(10001, 10000), (1025, 1024), (130, 129), (10**9, 777)]:
        spans = sampleSpans(rows, sampleSize)
        sizes = {stop - start for start, stop in spans}
        assert len(sizes) == 1 and sampleSize - len(spans) < sum(stop - start for start, stop in spans) <= sampleSize
        assert all(stop <= nextStart for (_, stop), (nextStart, _) in zip(spans, spans[1:]))
        assert spans[-1][1] <= rows


def test_duplicates_are_searched_in_the_sampled_blocks_only(tmp_path):
    data = np.random.default_rng(2).standard_normal((1000, 5)).astype(np.float32)
    data[510] = data[10]  # both rows sampled (blocks [0, 64) and [500, 564))
    data[300] = data[20]  # row 300 is not sampled
    with h5py.File(tmp_path / "big.h5", "w") as f:
        f["data"] = data
    dup = inspectH5(tmp_path / "big.h5", sampleSize=128, chunkBytes=8 * 5 * 10)["datasets"][0]["duplicates"]
    assert sampleSpans(1000, 128) == [(0, 64), (500, 564)]
    sample = np.concatenate([data[0:64], data[500:564]])
    assert dup["count"] == duplicateCount(sample) == 1
    assert (dup["sample"], dup["rows"], dup["blocks"], dup["fraction"]) == (128, 1000, 2, 1 / 128)


def test_string_dataset_is_reported_without_statistics(path):
    entry = byName(inspectH5(path, labels=[]))["group/names"]
    assert entry["numeric"] is False
    assert entry["stats"] is entry["nan"] is entry["inf"] is entry["classes"] is None
    assert entry["duplicates"]["count"] == 1 and entry["duplicates"]["sample"] == 4


def test_scalar_empty_and_dataspace_less_datasets_are_described(tmp_path):
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f["scalar"] = 2.5
        f["nothing"] = np.zeros((0, 4), np.float32)
        f["allnan"] = np.full((3, 2), np.nan)
        f["void"] = h5py.Empty("f4")
    entries = byName(inspectH5(tmp_path / "odd.h5"))
    assert entries["scalar"]["stats"] == {"count": 1, "min": 2.5, "max": 2.5, "mean": 2.5, "std": 0.0}
    assert entries["scalar"]["duplicates"] is None
    assert entries["nothing"]["stats"] == {"count": 0, "min": None, "max": None, "mean": None, "std": None}
    assert entries["nothing"]["duplicates"]["sample"] == 0
    assert entries["allnan"]["stats"]["count"] == 0 and entries["allnan"]["nan"] == 6
    assert entries["void"]["shape"] is None and entries["void"]["stats"] is None
    report = formatReport(inspectH5(tmp_path / "odd.h5"))
    assert "nothing: float32 (0, 4)" in report and "no finite values" in report and "empty dataspace" in report


def test_missing_file_and_non_hdf5_file_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5: no such file"):
        inspectH5(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DatasetError, match="text.h5: not a readable HDF5 file"):
        inspectH5(tmp_path / "text.h5")


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_sample_size_must_be_a_positive_integer(path, bad):
    with pytest.raises(ValueError, match=f"sampleSize must be a positive integer, got {bad!r}"):
        inspectH5(path, sampleSize=bad)


def test_report_has_one_block_per_dataset_with_its_numbers(path, arrays):
    info = inspectH5(path)
    report = formatReport(info)
    blocks = report.strip().split("\n\n")
    assert blocks[0] == f"{path}: 4 datasets"
    assert [block.split(":")[0] for block in blocks[1:]] == ["data", "group/names", "group/sub/values", "labels"]
    data, names, values, labels = blocks[1:]
    count, low, high, mean, std = finiteStats(arrays["data"])
    assert data.startswith("data: float32 (50, 3, 4), chunks (8, 3, 4), gzip 4, ")
    assert f"min {low:.6g}  max {high:.6g}  mean {mean:.6g}  std {std:.6g}  over {count} finite values" in data
    assert "NaN 1  Inf 2" in data
    assert "duplicate rows: 3 of 50 sampled (6.00%; sample: all rows)" in data
    assert "non-numeric: no statistics" in names and "duplicate rows: 1 of 4 sampled" in names
    assert "classes: 3, largest/smallest 2.50" in labels
    assert "0: 25 (50.0%), 1: 15 (30.0%), 2: 10 (20.0%)" in labels
    assert "duplicate rows" not in labels
    assert f"over {arrays['labels'].size} values" in labels and "NaN" not in labels  # integers: no NaN line


def test_report_states_the_sampled_blocks_and_shortens_long_class_lists(tmp_path):
    with h5py.File(tmp_path / "many.h5", "w") as f:
        f["data"] = np.arange(2000, dtype=np.float32).reshape(1000, 2)
        f["labels"] = np.arange(1000) % 30
    report = formatReport(inspectH5(tmp_path / "many.h5", sampleSize=256))
    assert "duplicate rows: 0 of 256 sampled (0.00%; sample: 4 evenly spaced blocks of 64 rows out of 1000)" in report
    assert "19: 33 (3.3%), ... and 10 more" in report


def test_histogram_without_matplotlib_names_the_plot_extra(path, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if it were not installed
    with pytest.raises(ImportError, match=r"pip install macrobatch\[plot\]"):
        classHistogram(inspectH5(path), tmp_path / "classes.png")
    assert not (tmp_path / "classes.png").exists()


def test_histogram_without_label_datasets_says_how_to_name_them(path, tmp_path):
    with pytest.raises(LabelError, match=r"no label datasets to plot; .*labels="):
        classHistogram(inspectH5(path, labels=[]), tmp_path / "classes.png")


def test_histogram_is_written_as_png(path, tmp_path):
    pytest.importorskip("matplotlib")
    out = classHistogram(inspectH5(path, labels=["labels", "group/sub/values"]), tmp_path / "classes.png")
    assert out == tmp_path / "classes.png"
    assert (tmp_path / "classes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
