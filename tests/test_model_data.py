"""The corpus pipeline on the real MicroJam data: loading, cleaning, splitting by performance, windowing."""

from __future__ import annotations

import numpy as np
import pytest

from model.data import DataError, load_corpus, make_windows, split_by_performance


@pytest.fixture(scope="module")
def h5_corpus(data_dir):
    return load_corpus(data_dir / "TinyPerformanceCorpus.h5")


@pytest.fixture(scope="module")
def npz_corpus(data_dir):
    return load_corpus(data_dir / "microjam-performances.npz")


def test_h5_splits_into_performances_at_each_first_touch(h5_corpus):
    assert h5_corpus.n_events == 172261
    assert len(h5_corpus.performances) == 1080
    for perf in h5_corpus.performances:
        assert perf[0, 2] == 0.0
        assert np.all(perf[1:, 2] > 0.0)
    assert len(h5_corpus.sha256) == 64


def test_npz_raw_corpus_is_cleaned_into_range(npz_corpus, data_dir):
    with np.load(data_dir / "microjam-performances.npz") as z:
        raw = z["events"]
    assert (raw[:, :2] < 0).any() and (raw[:, 2] > 5).any(), "the raw corpus should need cleaning"
    assert len(npz_corpus.performances) == 1626
    assert npz_corpus.n_events == len(raw)  # nothing non-finite to drop, so every row survives
    stream = np.concatenate(npz_corpus.performances)
    assert stream.dtype == np.float32
    assert stream[:, :2].min() >= 0.0 and stream[:, :2].max() <= 1.0
    assert stream[:, 2].min() >= 0.0 and stream[:, 2].max() <= 5.0
    untouched = (raw[:, :2] >= 0).all(axis=1) & (raw[:, :2] <= 1).all(axis=1) & (raw[:, 2] >= 0) & (raw[:, 2] <= 5)
    np.testing.assert_array_equal(stream[untouched], raw[untouched])


def test_windows_on_real_samples_are_shifted_by_one_event(h5_corpus):
    perfs = h5_corpus.performances[:20]
    x, y = make_windows(perfs, seq_len=100, step=10)
    stream = np.concatenate(perfs)
    assert x.shape == y.shape == ((len(stream) - 100 - 1) // 10 + 1, 100, 3)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    np.testing.assert_array_equal(x[3], stream[30:130])
    np.testing.assert_array_equal(y[3], stream[31:131])


def test_split_is_by_performance_seeded_and_complete(h5_corpus):
    train, val = split_by_performance(h5_corpus.performances, val_fraction=0.1, seed=7)
    assert set(train).isdisjoint(val)
    assert sorted(train + val) == list(range(len(h5_corpus.performances)))
    assert len(val) == 108
    assert (train, val) == split_by_performance(h5_corpus.performances, val_fraction=0.1, seed=7)
    assert val != split_by_performance(h5_corpus.performances, val_fraction=0.1, seed=8)[1]


def test_no_validation_window_contains_a_training_performance(h5_corpus):
    """Windows are cut per split, so every validation window's events come from validation performances."""
    perfs = h5_corpus.performances
    train, val = split_by_performance(perfs, 0.1, seed=2018)
    tagged = [np.column_stack([p, np.full(len(p), i, np.float32)]) for i, p in enumerate(perfs)]
    stream = np.concatenate([tagged[i] for i in val])
    windows_idx = np.arange(0, len(stream) - 100, 100)[:, None] + np.arange(101)
    owners = set(np.unique(stream[windows_idx][..., 3]).astype(int).tolist())
    assert owners <= set(val) and owners.isdisjoint(train)
    x, _ = make_windows([perfs[i] for i in val], 100, 100)
    np.testing.assert_array_equal(x, stream[windows_idx][:, :-1, :3])


def test_csv_directory_corpus(tmp_path):
    for i in range(3):
        rows = "".join(f"{t * 0.05:f}, {0.1 * i:f}, {0.2:f}, 38.000000, {int(t > 0)}\n" for t in range(10))
        (tmp_path / f"perf{i}.csv").write_text("time,x,y,z,moving\n" + rows)
    corpus = load_corpus(tmp_path)
    assert len(corpus.performances) == 3
    assert corpus.n_events == 30
    np.testing.assert_allclose(corpus.performances[2][1], [0.2, 0.2, 0.05], atol=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.h5", "corpus not found"),
        (lambda d: (d / "corpus.txt").write_text("x") and d / "corpus.txt", "unsupported corpus file"),
        (lambda d: (d / "bad.h5").write_bytes(b"not hdf5") and d / "bad.h5", "not a readable HDF5 file"),
        (lambda d: (d / "bad.npz").write_bytes(b"not a zip") and d / "bad.npz", "not a readable .npz"),
        (lambda d: d, "holds no .csv performances"),
    ],
)
def test_bad_corpus_paths_raise_one_clear_sentence(tmp_path, make, message):
    with pytest.raises(DataError, match=message) as info:
        load_corpus(make(tmp_path))
    assert "\n" not in str(info.value)


def test_empty_and_all_nan_corpora_are_rejected(tmp_path):
    np.savez(tmp_path / "empty.npz", events=np.zeros((0, 3), np.float32), offsets=np.array([0], np.int64))
    with pytest.raises(DataError, match="offsets"):
        load_corpus(tmp_path / "empty.npz")
    nan = np.full((5, 3), np.nan, np.float32)
    np.savez(tmp_path / "nan.npz", events=nan, offsets=np.array([0, 5], np.int64))
    with pytest.raises(DataError, match="no usable touch events"):
        load_corpus(tmp_path / "nan.npz")
    np.savez(tmp_path / "shape.npz", events=np.zeros((5, 2), np.float32), offsets=np.array([0, 5], np.int64))
    with pytest.raises(DataError, match=r"expected \(n, 3\)"):
        load_corpus(tmp_path / "shape.npz")


def test_csv_corpus_follows_the_contract_rules(tmp_path):
    """The corpus reads CSV as the service does: header case ignored, a non-finite value refused by file and line."""
    (tmp_path / "a.csv").write_text("TIME, X, Y\n0, 0.5, 0.5\n0.1, 0.6, 0.5\n")
    assert load_corpus(tmp_path).n_events == 2
    (tmp_path / "b.csv").write_text("time,x,y\n0,0.5,0.5\n0.1,nan,0.5\n")
    with pytest.raises(DataError, match=r"^b\.csv, line 3: the 'x' value 'nan' is not a finite number\.$"):
        load_corpus(tmp_path)


def test_a_csv_file_that_is_not_utf8_is_refused_by_name(tmp_path):
    (tmp_path / "a.csv").write_text("time,x,y\n0,0.5,0.5\n")
    (tmp_path / "latin1.csv").write_bytes("time,x,y\n0,0.5,0.5 # café\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"^latin1\.csv is not UTF-8 text") as info:
        load_corpus(tmp_path)
    assert "\n" not in str(info.value) and str(info.value).endswith(".")
