"""The one place the pack uses pulumi-policy's private API: where a stack policy's secrets were.

pulumi-policy unwraps secrets without marking them before a stack policy sees the properties (checked on
1.21.0: `_PolicyAnalyzerServicer.AnalyzeStack` deserialises each resource, in request order, through the module
global `pulumi_policy.policy.deserialize_properties`). `record_secret_paths` wraps that global so the pack learns,
per resource, which property paths were secrets; `canary` says in one line when an upgrade breaks the seam.
"""

from __future__ import annotations

import importlib.metadata

import pulumi_policy.policy as _sdk
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY

WRITTEN_FOR = ((1, 21), (2, 0))  # pulumi-policy >= 1.21, < 2
WRITTEN_FOR_TEXT = "pulumi-policy >=1.21,<2"


class CompatError(RuntimeError):
    """The installed pulumi-policy no longer offers what this seam relies on (one line, naming this module)."""


def secret_paths(value, path: str = "") -> list[str]:
    """Property paths ("spec.x[0]") holding a secret envelope, in the wire format the engine sends."""
    if isinstance(value, dict):
        if value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            return [path]
        return [p for k, v in value.items() for p in secret_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in secret_paths(v, f"{path}[{i}]")]
    return []


def record_secret_paths(recorded: list[tuple[str, ...]]) -> None:
    """From now on, append each deserialised resource's secret paths to `recorded` (in request order)."""
    deserialize = _sdk.deserialize_properties

    def recording_deserialize(props, proxy_secrets=False):
        recorded.append(tuple(secret_paths(props)))
        return deserialize(props, proxy_secrets)

    _sdk.deserialize_properties = recording_deserialize


def _version() -> tuple[int, ...]:
    text = importlib.metadata.version("pulumi-policy")
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def canary() -> None:
    """Raise CompatError (one line naming policy/compat.py) if the installed pulumi-policy breaks this seam."""
    where = f"policy/compat.py (written for {WRITTEN_FOR_TEXT})"
    low, high = WRITTEN_FOR
    if not low <= _version() < high:
        raise CompatError(f"{where}: pulumi-policy {importlib.metadata.version('pulumi-policy')} is outside its range.")
    analyzer = getattr(_sdk, "_PolicyAnalyzerServicer", None)
    stack = getattr(analyzer, "AnalyzeStack", None)
    if stack is None or "deserialize_properties" not in stack.__code__.co_names:
        raise CompatError(f"{where}: AnalyzeStack no longer deserialises through policy.deserialize_properties.")
    envelope = {"a": {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": "s"}, "b": 1}
    if _sdk.deserialize_properties(envelope, False) != {"a": "s", "b": 1}:
        raise CompatError(f"{where}: deserialize_properties no longer unwraps secrets to their plain values.")
