"""The config machinery: key declarations, parser combinators, and the keys more than one target reads.

A target module (infra/targets/) declares its own keys with `Key`, each naming the settings field it fills,
and writes its cross-key rules by hand; infra.stack_config puts the shared keys and the selected target's keys
together. Parsers are built from a few combinators (pattern, integer, number, boolean, choice, string list,
CIDR list); every message is one sentence that names the key.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import pathlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.compat import pulumi_sdk
from robojam_format.layout import REPO_ROOT

# Public: the costs engine prices by region with the same rules.
ZONE_PATTERN = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")
REGION_PATTERN = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")


def region_of(zone: str) -> str:
    """The GCP region holding a zone: us-central1-a -> us-central1 (ConfigError if it is not a zone)."""
    match = ZONE_PATTERN.match(zone)
    if not match:
        raise ConfigError(f"gcp:zone must be a GCP zone such as us-central1-a, got {zone!r}.")
    return match.group(1)


class ConfigError(ValueError):
    """A stack config value is wrong; the message is one sentence that names the key."""


Parser = Callable[[str, str], Any]  # (key, raw string) -> value, or ConfigError naming the key


# --- combinators -------------------------------------------------------------------------------------------


def text(key: str, raw: str) -> str:
    return raw.strip()


def pattern(regex: str, what: str, normalize: Callable[[str], str] = str.strip) -> Parser:
    compiled = re.compile(regex)

    def parse(key: str, raw: str) -> str:
        value = normalize(raw)
        if not compiled.match(value):
            raise ConfigError(f"{key} must be {what}, got {value!r}.")
        return value

    return parse


def optional(parser: Parser) -> Parser:
    """Empty stays empty (the key's "not set"); anything else goes through `parser`."""
    return lambda key, raw: parser(key, raw) if raw.strip() else ""


def integer(low: int | None = None, high: int | None = None) -> Parser:
    def parse(key: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a whole number, got {raw!r}.") from None
        if low is not None and value < low:
            raise ConfigError(f"{key} must be at least {low}, got {value}.")
        if high is not None and value > high:
            raise ConfigError(f"{key} must be at most {high}, got {value}.")
        return value

    return parse


def number(what: str, above: float, at_most: float) -> Parser:
    def parse(key: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be {what}, got {raw!r}.") from None
        if not above < value <= at_most:
            raise ConfigError(f"{key} must be above {above:g} and at most {at_most:g}, got {value:g}.")
        return value

    return parse


def boolean(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ConfigError(f"{key} must be true or false, got {raw!r}.")
    return value == "true"


def optional_boolean(key: str, raw: str) -> bool | None:
    """Empty = decided by another key (see the target's cross-checks)."""
    return None if not raw.strip() else boolean(key, raw)


def _listed(options) -> str:
    options = [str(o) for o in options]
    return f"{options[0]} or {options[1]}" if len(options) == 2 else "one of " + ", ".join(options)


def choice(options: tuple, convert: Callable[[str], Any] = str.strip) -> Parser:
    def parse(key: str, raw: str):
        value = convert(raw)
        if value not in options:
            raise ConfigError(f"{key} must be {_listed(options)}, got {value!r}.")
        return value

    return parse


def int_choice(options: tuple[int, ...]) -> Parser:
    whole = integer()

    def parse(key: str, raw: str) -> int:
        value = whole(key, raw)
        if value not in options:
            raise ConfigError(f"{key} must be {_listed(options)}, got {value}.")
        return value

    return parse


def string_list(item: Parser | None = None, nonempty: str = "") -> Parser:
    """A YAML/JSON list of strings; `item` checks each entry; `nonempty` is the message when it is empty."""

    def parse(key: str, raw: str) -> tuple:
        try:
            value = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list (pulumi config set --path '{key}[0]' VALUE), got {raw!r}.")
        if nonempty and not value:
            raise ConfigError(f"{key} {nonempty}.")
        return tuple(item(key, v) if item else v.strip() for v in value)

    return parse


def entry(regex: str, what: str) -> Parser:
    """One list entry matching `regex` ("KEY entry 'x' is WHAT.")."""
    compiled = re.compile(regex)

    def parse(key: str, raw: str) -> str:
        value = raw.strip()
        if not compiled.match(value):
            raise ConfigError(f"{key} entry {value!r} is {what}.")
        return value

    return parse


def cidr_list(opens: str) -> Parser:
    """CIDRs, never the whole internet (that would open `opens` to everyone)."""

    def cidr(key: str, raw: str) -> str:
        item = raw.strip()
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError:
            raise ConfigError(f"{key} entry {item!r} is not a valid CIDR such as 203.0.113.7/32.") from None
        if network.prefixlen == 0:
            raise ConfigError(f"{key} must not open {opens} to the whole internet ({item}); list your own CIDRs.")
        return str(network)

    return string_list(cidr)


def existing_file(key: str, raw: str) -> pathlib.Path:
    path = pathlib.Path(raw.strip())
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_file():
        raise ConfigError(f"{key} {path} is not a file.")
    return path.resolve()


# --- the keys ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One config key: the settings field it fills, its default (None = required), meaning and parser.

    `parse=None` marks a key the provider reads itself (documented and target-checked, not parsed here).
    """

    name: str
    field: str
    default: Any
    meaning: str
    parse: Parser | None = text


def as_words(options: Iterable[str]) -> str:
    """'a, b or c': how the docs and the help texts list a few choices."""
    options = list(options)
    return ", ".join(options[:-1]) + " or " + options[-1] if len(options) > 1 else "".join(options)


def default_string(key: Key) -> str:
    """A key's default as Pulumi would hand it over (config values are strings)."""
    if isinstance(key.default, bool):
        return "true" if key.default else "false"
    if isinstance(key.default, list | tuple):
        return json.dumps(list(key.default))
    return "" if key.default is None else str(key.default)


def parse_keys(keys: Iterable[Key], values: Mapping[str, str]) -> dict[str, Any]:
    """Settings field -> parsed value for each key (its default when unset); a required key must be set."""
    parsed = {}
    for key in keys:
        if key.parse is None:
            continue
        raw = values.get(key.name, default_string(key))
        if key.default is None and not raw.strip():
            raise ConfigError(f"{key.name} must be set.")
        parsed[key.field] = key.parse(key.name, raw)
    return parsed


def check_names(values: Mapping[str, str], known: Mapping[str, Key], read: Iterable[Key], target: str) -> None:
    """Every robojam key set is one this program reads, and every known key set is one this target reads."""
    read_names = {key.name for key in read}
    for name in sorted(values):
        if name not in known and name.split(":", 1)[0] == "robojam":
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{name} is not a config key this program reads{hint}.")
        if name in known and name not in read_names:
            raise ConfigError(f"{name} does not apply to target {target}; remove it from this stack.")


def check_secrets(values: Mapping[str, str], keys: Iterable[Key], secret_keys: set[str] | frozenset) -> None:
    """A key the provider reads itself (a credential) must be set as a secret."""
    for key in keys:
        if key.parse is None and key.name in values and key.name not in secret_keys:
            raise ConfigError(f"{key.name} must be set with `pulumi config set --secret`, never in plain text.")


def not_above(v: Mapping, names: Mapping[str, str], low: str, high: str, measure: Callable = float) -> None:
    """The rule `low <= high` between two settings fields, in a sentence naming both keys."""
    if measure(v[low]) > measure(v[high]):
        raise ConfigError(f"{names[low]} ({v[low]}) must not exceed {names[high]} ({v[high]}).")


def read_pulumi_config() -> tuple[dict[str, str], set[str]]:
    """The stack's config as Pulumi hands it to the program ("ns:key" -> string) and its secret keys."""
    import pulumi.runtime

    values = pulumi_sdk.configured_values()  # every key that was set: no public API lists them
    secret = {k for k in values if pulumi.runtime.is_config_secret(k)}
    secret |= set(pulumi.runtime.get_config_secret_keys_env())
    return {k: str(v) for k, v in values.items()}, secret


# --- the keys more than one target reads -------------------------------------------------------------------

IMAGE = Key(
    "robojam:image",
    "image",
    "",
    "prebuilt image to run instead of building `Dockerfile` and pushing it",
    optional(
        pattern(
            r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
            r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$",
            "an image reference like registry/name:tag",
        )
    ),
)
SSH_CIDRS = Key(
    "robojam:sshCidrs",
    "ssh_cidrs",
    [],
    "CIDRs allowed to SSH in; never `0.0.0.0/0`. gpu-vm: empty = no SSH rule at all; droplet: required, it "
    "must hold the address you run `pulumi up` from (the rollout runs over SSH)",
    cidr_list("SSH"),
)
GCE_MACHINE = r"^[a-z][a-z0-9]*-[a-z0-9-]+$"  # a Compute Engine machine type (the GPU VM's, GKE's nodes')
GCP_KEYS = (
    Key(
        "gcp:project",
        "project",
        None,
        "GCP project id",
        pattern(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", "a GCP project id (6-30 lowercase letters, digits or hyphens)"),
    ),
    Key(
        "gcp:zone",
        "zone",
        "us-central1-a",
        "zone of the VM / the zonal cluster",
        pattern(ZONE_PATTERN.pattern, "a GCP zone such as us-central1-a"),
    ),
    Key(
        "gcp:region",
        "region",
        "",
        "region of the bucket and the Artifact Registry repository; must hold the zone; empty = the zone's region",
        optional(pattern(REGION_PATTERN.pattern, "a GCP region such as us-central1")),
    ),
)


@dataclass(frozen=True)
class GcpSettings:
    project: str
    region: str
    zone: str


def gcp_settings(v: dict, names: Mapping[str, str]) -> GcpSettings:
    """The GCP section; the region defaults to the zone's and must hold it (`v` updated in place)."""
    zone_region = region_of(v["zone"])
    v["region"] = v["region"] or zone_region
    if v["region"] != zone_region:
        raise ConfigError(f"{names['zone']} {v['zone']} is not in {names['region']} {v['region']}.")
    return GcpSettings(project=v["project"], region=v["region"], zone=v["zone"])


_SUFFIX = {"m": 1e-3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text: str) -> float:
    """A validated Kubernetes quantity as a number, to compare requests with limits (the costs engine too)."""
    number = re.match(r"^[0-9.]+", text).group(0)
    return float(number) * _SUFFIX.get(text[len(number) :], 1.0)
