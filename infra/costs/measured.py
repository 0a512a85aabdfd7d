"""The capacity record `make bench-capacity` writes (benchmarks/capacity.json): what one vCPU of the service serves.

The record is the service as deployed (its default settings, Caddy in front, one core) measured at the highest
load that held its latency objective, with the weights' sha256. A record made for other weights than a stack
serves prices nothing: `check_weights` refuses it in one sentence. The bytes a request and its reply take on
the wire feed the usage model (`infra.costs.usage`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RATE_KEY = "requests_per_second_per_vcpu"  # the report's name for the rate the capacity steps multiply


class CapacityError(ValueError):
    """The capacity record is unreadable, lacks a field, or was made for other weights."""


@dataclass(frozen=True)
class CapacityRecord:
    """What one core served within the objective, and for which weights, CPU and request size."""

    path: str
    requests_per_second: float
    vcpus: float
    cpu: str
    date: str
    objective: str
    weights_sha256: str
    request_bytes: float
    reply_bytes: float

    @property
    def rate_per_vcpu(self) -> float:
        return self.requests_per_second / self.vcpus

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            RATE_KEY: self.rate_per_vcpu,
            "requests_per_second": self.requests_per_second,
            "vcpus": self.vcpus,
            "cpu": self.cpu,
            "date": self.date,
            "objective": self.objective,
            "weights_sha256": self.weights_sha256,
            "request_bytes": self.request_bytes,
            "reply_bytes": self.reply_bytes,
        }


def _positive(data: dict, *keys: str) -> float:
    value = data
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise CapacityError(f"has no positive number under {'.'.join(keys)!r}")
    return float(value)


def read_capacity(path: Path, shown: str) -> CapacityRecord | None:
    """The record at `path` (`shown` is how the report names it), or None when there is no such file."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise CapacityError("is not a JSON object")
        objective = data.get("objective") or {}
        sha = (data.get("weights") or {}).get("sha256")
        if not isinstance(sha, str) or len(sha) != 64:
            raise CapacityError("names no weights sha256 (weights.sha256)")
        return CapacityRecord(
            path=shown,
            requests_per_second=_positive(data, "requests_per_second"),
            vcpus=_positive(data, "vcpus"),
            cpu=str(data.get("cpu") or "unknown CPU"),
            date=str(data.get("date") or ""),
            objective=f"p99 <= {objective.get('p99_ms_at_most', '?')} ms, nothing shed",
            weights_sha256=sha,
            request_bytes=_positive(data, "bytes_per_request", "request"),
            reply_bytes=_positive(data, "bytes_per_request", "reply"),
        )
    except (OSError, json.JSONDecodeError) as exc:
        raise CapacityError(f"capacity file {path} is not readable JSON ({exc})") from None
    except CapacityError as exc:
        raise CapacityError(f"capacity file {path} {exc}") from None


def check_weights(record: CapacityRecord, stack: str, weights: str, sha256: str) -> None:
    """Refuse a record measured for other weights than the stack serves, in one sentence."""
    if record.weights_sha256 != sha256:
        raise CapacityError(
            f"capacity file {record.path} was measured for weights sha256 {record.weights_sha256[:12]}..., but "
            f"stack {stack!r} serves {weights} (sha256 {sha256[:12]}...): run `make bench-capacity` for them"
        )


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
