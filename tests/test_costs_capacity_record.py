"""The capacity record: how `make bench-capacity` picks the capacity, and how infra.costs reads a record."""

from __future__ import annotations

import json

import pytest

from benchmarks.capacity import OBJECTIVE_P99_MS, capacity_of, holds
from infra.costs.measured import CapacityError, check_weights, read_capacity


def row(clients: int, rps: float, p99: float, shed: float = 0.0, failed: int = 0) -> dict:
    return {"clients": clients, "served": 100, "req_per_s": rps, "p99_ms": p99, "shed_share": shed, "failed": failed}


def test_the_capacity_is_the_best_level_that_held_the_objective():
    rows = [row(1, 30, 50), row(16, 120, 480), row(32, 130, 700), row(64, 125, 450, shed=0.2)]
    assert [holds(r) for r in rows] == [True, True, False, False]  # too slow; shed requests
    assert capacity_of(rows)["clients"] == 16 and OBJECTIVE_P99_MS == 500
    assert holds(row(8, 100, 400, failed=1)) is False
    assert capacity_of([row(1, 30, 900)]) is None


def record(**changes) -> dict:
    base = {
        "requests_per_second": 120.0,
        "vcpus": 1,
        "cpu": "Test CPU",
        "date": "2026-12-03T00:00:00Z",
        "objective": {"p99_ms_at_most": 500},
        "weights": {"path": "w.npz", "sha256": "a" * 64},
        "bytes_per_request": {"request": 4000, "reply": 3500},
    }
    return {**base, **changes}


def test_a_record_is_read_and_checked_against_the_served_weights(tmp_path):
    path = tmp_path / "capacity.json"
    path.write_text(json.dumps(record(vcpus=2)))
    got = read_capacity(path, "capacity.json")
    assert (got.rate_per_vcpu, got.request_bytes, got.reply_bytes) == (60.0, 4000.0, 3500.0)
    check_weights(got, "dev", "w.npz", "a" * 64)  # the same weights: nothing to say
    with pytest.raises(CapacityError, match="measured for weights sha256 aaaaaaaaaaaa.*serves other.npz"):
        check_weights(got, "dev", "other.npz", "b" * 64)
    assert read_capacity(tmp_path / "missing.json", "missing.json") is None


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"weights": {}}, "names no weights sha256"),
        ({"requests_per_second": 0}, "requests_per_second"),
        ({"bytes_per_request": {"request": 1}}, "bytes_per_request.reply"),
    ],
)
def test_a_bad_record_is_one_sentence(tmp_path, changes, words):
    path = tmp_path / "capacity.json"
    path.write_text(json.dumps(record(**changes)))
    with pytest.raises(CapacityError, match=words):
        read_capacity(path, "capacity.json")
    path.write_text("{not json")
    with pytest.raises(CapacityError, match="not readable JSON"):
        read_capacity(path, "capacity.json")
