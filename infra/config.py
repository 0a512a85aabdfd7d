"""One typed, validated view of the stack's config; a wrong value stops the program before any resource.

Every key the program reads is declared once, in KEYS: its targets, default, meaning and parser. Parsers are
built from a few combinators (pattern, integer, number, boolean, choice, string list, CIDR list); a parsed
key lands in the settings field named after it (`robojam:maxRunHours` -> `max_run_hours`). Only rules that
relate two keys are written by hand, in `_cross_checks`. The README's config table is checked against KEYS.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import pathlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.gpus import GPU_TYPES, gpu_problem
from robojam_format.layout import REPO_ROOT

TARGETS = ("droplet", "gke", "gpu-vm")
GCP_TARGETS = ("gke", "gpu-vm")
SERVING_TARGETS = ("droplet", "gke")
GPU_COUNTS = (1, 2, 4, 8)
TERMINATION_ACTIONS = ("STOP", "DELETE")
MAX_RUN_HOURS_LIMIT = 168  # a week: the hard stop exists so a forgotten VM stops costing money

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
    """Empty = decided by another key (see `_cross_checks`)."""
    return None if not raw.strip() else boolean(key, raw)


def _one_of(options) -> str:
    options = [str(o) for o in options]
    return f"{options[0]} or {options[1]}" if len(options) == 2 else "one of " + ", ".join(options)


def choice(options: tuple, convert: Callable[[str], Any] = str.strip) -> Parser:
    def parse(key: str, raw: str):
        value = convert(raw)
        if value not in options:
            raise ConfigError(f"{key} must be {_one_of(options)}, got {value!r}.")
        return value

    return parse


def int_choice(options: tuple[int, ...]) -> Parser:
    whole = integer()

    def parse(key: str, raw: str) -> int:
        value = whole(key, raw)
        if value not in options:
            raise ConfigError(f"{key} must be {_one_of(options)}, got {value}.")
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
    """One config key: which targets read it, its default (None = required), meaning and parser.

    `parse=None` marks a key the provider reads itself (documented and target-checked, not parsed here).
    """

    name: str
    targets: tuple[str, ...]
    default: Any
    meaning: str
    parse: Parser | None = text

    @property
    def field(self) -> str:
        """The settings field it fills: `robojam:maxRunHours` -> `max_run_hours`."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name.split(":", 1)[1]).lower()


GCE_MACHINE = r"^[a-z][a-z0-9]*-[a-z0-9-]+$"
CPU = pattern(r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$", "a CPU quantity such as 250m or 1")
MEMORY = pattern(r"^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$", "a memory quantity such as 256Mi")

KEYS: tuple[Key, ...] = (
    Key("robojam:target", TARGETS, None, "which target this stack builds: droplet, gke or gpu-vm", choice(TARGETS)),
    Key(
        "robojam:image",
        SERVING_TARGETS,
        "",
        "prebuilt image to run; empty = build the Dockerfile and push it",
        optional(
            pattern(
                r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$",
                "an image reference like registry/name:tag",
            )
        ),
    ),
    Key(
        "robojam:sshCidrs",
        ("droplet", "gpu-vm"),
        [],
        "CIDRs allowed to SSH in; empty = no SSH rule at all (droplet: required, its rollout runs over SSH)",
        cidr_list("SSH"),
    ),
    Key(
        "gcp:project",
        GCP_TARGETS,
        None,
        "GCP project id",
        pattern(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", "a GCP project id (6-30 lowercase letters, digits or hyphens)"),
    ),
    Key(
        "gcp:zone",
        GCP_TARGETS,
        "us-central1-a",
        "GCP zone of the VM / zonal cluster",
        pattern(ZONE_PATTERN.pattern, "a GCP zone such as us-central1-a"),
    ),
    Key(
        "gcp:region",
        GCP_TARGETS,
        "",
        "GCP region (bucket, Artifact Registry); must hold the zone",
        optional(pattern(REGION_PATTERN.pattern, "a GCP region such as us-central1")),
    ),
    Key(
        "robojam:machineType",
        ("gpu-vm",),
        "n1-standard-4",
        "VM machine type",
        pattern(GCE_MACHINE, "a Compute Engine machine type such as n1-standard-4"),
    ),
    Key("robojam:gpuType", ("gpu-vm",), "nvidia-tesla-t4", "GPU type: " + ", ".join(GPU_TYPES), choice(GPU_TYPES)),
    Key("robojam:gpuCount", ("gpu-vm",), 1, "GPUs attached: 1, 2, 4 or 8, as the GPU allows", int_choice(GPU_COUNTS)),
    Key(
        "robojam:imageFamily",
        ("gpu-vm",),
        "common-cu128-ubuntu-2204-nvidia-570",
        "Deep Learning VM image family (project deeplearning-platform-release)",
        pattern(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$", "an image family name"),
    ),
    Key(
        "robojam:bootDiskGb",
        ("gpu-vm",),
        100,
        "boot disk size in GB (at least 50 for Deep Learning VM images)",
        integer(low=50, high=2000),
    ),
    Key("robojam:spot", ("gpu-vm",), False, "use Spot provisioning (cheaper, can be preempted)", boolean),
    Key(
        "robojam:maxRunHours",
        ("gpu-vm",),
        6,
        f"hard run limit in hours (at most {MAX_RUN_HOURS_LIMIT})",
        number("a number of hours", above=0, at_most=MAX_RUN_HOURS_LIMIT),
    ),
    Key(
        "robojam:terminationAction",
        ("gpu-vm",),
        "STOP",
        "what the run limit does: STOP or DELETE",
        choice(TERMINATION_ACTIONS, convert=lambda raw: raw.strip().upper()),
    ),
    Key(
        "robojam:corpusPath",
        ("gpu-vm",),
        None,
        "local corpus file uploaded to the bucket (relative to the repo)",
        existing_file,
    ),
    Key(
        "robojam:runName",
        ("gpu-vm",),
        "gpu",
        "run folder name: runs/NAME and model/weights/NAME.npz",
        pattern(r"^[a-z0-9][a-z0-9_-]{0,62}$", "lowercase letters, digits, '-' or '_'"),
    ),
    Key("robojam:epochs", ("gpu-vm",), 100, "training epochs (early stopping may end sooner)", integer(low=1)),
    Key(
        "robojam:interactive",
        ("gpu-vm",),
        False,
        "JupyterLab on 127.0.0.1:8888 from the project's venv; the VM stays up after training until maxRunHours",
        boolean,
    ),
    Key(
        "digitalocean:token",
        ("droplet",),
        None,
        "DigitalOcean API token, set with --secret, never in a file",
        None,
    ),
    Key(
        "robojam:region",
        ("droplet",),
        "nyc3",
        "DigitalOcean region slug",
        pattern(r"^[a-z]{3}[0-9]$", "a DigitalOcean region slug like nyc3"),
    ),
    Key(
        "robojam:size",
        ("droplet",),
        "s-1vcpu-1gb",
        "droplet size slug",
        pattern(r"^[a-z0-9]+(-[a-z0-9]+)+$", "a droplet size slug like s-1vcpu-1gb"),
    ),
    Key(
        "robojam:sshKeys",
        ("droplet",),
        [],  # required all the same: the parser refuses an empty list with its own sentence
        "fingerprints or ids of SSH keys already in the DigitalOcean account",
        string_list(
            entry(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$|^[0-9]+$", "neither an MD5 fingerprint (aa:bb:...) nor a key id"),
            nonempty="must list at least one DigitalOcean SSH key (password login stays off)",
        ),
    ),
    Key(
        "robojam:reservedIp",
        ("droplet",),
        "",
        "attach a reserved (static) IP; empty = only when robojam:domain is set",
        optional_boolean,
    ),
    Key(
        "robojam:domain",
        ("droplet",),
        "",
        "domain pointing at the droplet; set = Caddy with automatic HTTPS",
        optional(
            pattern(
                r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
                "a domain name such as jam.example.org",
                normalize=lambda raw: raw.strip().lower().rstrip("."),
            )
        ),
    ),
    Key(
        "robojam:acmeEmail",
        ("droplet",),
        "",
        "contact e-mail for the certificate authority (needs domain)",
        optional(pattern(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an e-mail address")),
    ),
    Key(
        "robojam:registryName",
        ("droplet",),
        "",
        "DigitalOcean Container Registry name (unique across DigitalOcean); empty = robojam-<account id>",
        optional(
            pattern(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", "lowercase letters, digits and hyphens (at most 63)")
        ),
    ),
    Key("robojam:createRegistry", ("droplet",), True, "create the registry (false = it already exists)", boolean),
    Key(
        "robojam:nodeMachineType",
        ("gke",),
        "e2-medium",
        "node pool machine type",
        pattern(GCE_MACHINE, "a Compute Engine machine type such as e2-medium"),
    ),
    Key("robojam:minNodes", ("gke",), 1, "node pool autoscaling minimum", integer(low=0)),
    Key("robojam:maxNodes", ("gke",), 3, "node pool autoscaling maximum", integer(low=1)),
    Key(
        "robojam:replicas", ("gke",), 2, "HPA minimum replicas (the Deployment leaves replicas to the HPA)", integer(1)
    ),
    Key("robojam:maxReplicas", ("gke",), 6, "HPA maximum replicas", integer(low=1)),
    Key(
        "robojam:cpuTargetPercent",
        ("gke",),
        70,
        "HPA target average CPU utilisation, 1-100",
        integer(low=1, high=100),
    ),
    Key("robojam:cpuRequest", ("gke",), "250m", "container CPU request", CPU),
    Key("robojam:cpuLimit", ("gke",), "1", "container CPU limit", CPU),
    Key("robojam:memoryRequest", ("gke",), "256Mi", "container memory request", MEMORY),
    Key("robojam:memoryLimit", ("gke",), "512Mi", "container memory limit", MEMORY),
    Key(
        "robojam:controlPlaneCidrs",
        ("gke",),
        [],
        "CIDRs that may reach the cluster's control plane; empty = any address (still authenticated)",
        cidr_list("the control plane"),
    ),
)
KEYS_BY_NAME = {k.name: k for k in KEYS}


# --- the settings each target reads (field names are the keys' fields) --------------------------------------


@dataclass(frozen=True)
class GcpSettings:
    project: str
    region: str
    zone: str


@dataclass(frozen=True)
class GpuVmSettings:
    machine_type: str
    gpu_type: str
    gpu_count: int
    image_family: str
    boot_disk_gb: int
    spot: bool
    max_run_hours: float
    termination_action: str
    corpus_path: pathlib.Path
    run_name: str
    epochs: int
    ssh_cidrs: tuple[str, ...]
    interactive: bool = False


@dataclass(frozen=True)
class DropletSettings:
    region: str
    size: str
    ssh_keys: tuple[str, ...]
    ssh_cidrs: tuple[str, ...]
    reserved_ip: bool
    domain: str
    acme_email: str
    registry_name: str  # "" = derived from the account (see infra.components.image)
    create_registry: bool


@dataclass(frozen=True)
class GkeSettings:
    node_machine_type: str
    min_nodes: int
    max_nodes: int
    replicas: int
    max_replicas: int
    cpu_target_percent: int
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    control_plane_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class StackConfig:
    stack: str
    target: str
    image: str  # prebuilt image reference; "" = build from the Dockerfile
    gcp: GcpSettings | None = None
    gpu_vm: GpuVmSettings | None = None
    droplet: DropletSettings | None = None
    gke: GkeSettings | None = None


SECTIONS = {"gpu-vm": ("gpu_vm", GpuVmSettings), "droplet": ("droplet", DropletSettings), "gke": ("gke", GkeSettings)}
_STACK = re.compile(r"^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$")  # fits GCP account ids, bucket and droplet names


# --- loading -----------------------------------------------------------------------------------------------


def read_pulumi_config() -> tuple[dict[str, str], set[str]]:
    """The stack's config as Pulumi hands it to the program ("ns:key" -> string) and its secret keys."""
    from pulumi.runtime import config as runtime_config  # the only place that knows every key that was set

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = {k for k in values if runtime_config.is_config_secret(k)}
    secret |= set(runtime_config.get_config_secret_keys_env())
    return {k: str(v) for k, v in values.items()}, secret


def load() -> StackConfig:
    """Validate the running stack's config (raises ConfigError with one sentence)."""
    values, secret_keys = read_pulumi_config()
    return parse(values, stack=pulumi.get_stack(), secret_keys=secret_keys)


def default_string(key: Key) -> str:
    """A key's default as Pulumi would hand it over (config values are strings)."""
    if isinstance(key.default, bool):
        return "true" if key.default else "false"
    if isinstance(key.default, list | tuple):
        return json.dumps(list(key.default))
    return "" if key.default is None else str(key.default)


def parse(values: Mapping[str, str], stack: str = "", secret_keys: set[str] | frozenset = frozenset()) -> StackConfig:
    """Turn raw config strings into a StackConfig, checking every rule before anything is created."""
    if stack and not _STACK.match(stack):
        raise ConfigError(
            f"stack name {stack!r} names cloud resources, so it must be 1-16 lowercase letters, digits or hyphens."
        )
    target = KEYS_BY_NAME["robojam:target"].parse("robojam:target", values.get("robojam:target", ""))
    _check_names(values, target)
    for key in KEYS:
        if key.parse is None and key.name in values and key.name not in secret_keys:
            raise ConfigError(f"{key.name} must be set with `pulumi config set --secret`, never in plain text.")
    parsed = {}
    for key in KEYS:
        if target not in key.targets or key.parse is None or key.name == "robojam:target":
            continue
        raw = values.get(key.name, default_string(key))
        if key.default is None and not raw.strip():
            raise ConfigError(f"{key.name} must be set.")
        parsed[key.field] = key.parse(key.name, raw)
    _cross_checks(target, parsed, _Names(target))
    config = {"stack": stack, "target": target, "image": parsed.get("image", "")}
    if target in GCP_TARGETS:
        config["gcp"] = _section(GcpSettings, parsed)
    attribute, settings = SECTIONS[target]
    config[attribute] = _section(settings, parsed)
    return StackConfig(**config)


def _section(settings: type, parsed: dict):
    return settings(**{f.name: parsed[f.name] for f in dataclasses.fields(settings) if f.name in parsed})


def _check_names(values: Mapping[str, str], target: str) -> None:
    for name in sorted(values):
        key = KEYS_BY_NAME.get(name)
        if key is None and name.split(":", 1)[0] == "robojam":
            close = difflib.get_close_matches(name, list(KEYS_BY_NAME), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{name} is not a config key this program reads{hint}.")
        if key is not None and target not in key.targets:
            raise ConfigError(f"{name} does not apply to target {target}; remove it from this stack.")


class _Names:
    """Config key names by settings field, for the messages of the cross-key rules."""

    def __init__(self, target: str):
        self._names = {k.field: k.name for k in KEYS if target in k.targets}

    def __getattr__(self, field: str) -> str:
        return self._names[field]


# --- rules that relate keys --------------------------------------------------------------------------------


def _cross_checks(target: str, v: dict, key: _Names) -> None:
    """The rules no single key's parser can check; `v` maps field -> parsed value (updated in place)."""
    if target in GCP_TARGETS:
        zone_region = region_of(v["zone"])
        v["region"] = v["region"] or zone_region
        if v["region"] != zone_region:
            raise ConfigError(f"{key.zone} {v['zone']} is not in {key.region} {v['region']}.")
    if target == "gpu-vm":
        problem = gpu_problem(v["gpu_type"], v["gpu_count"], v["machine_type"], v["zone"])
        if problem:
            setting, sentence = problem
            raise ConfigError(f"{getattr(key, setting)} {sentence}.")
    if target == "droplet":
        if v["acme_email"] and not v["domain"]:
            raise ConfigError(f"{key.acme_email} only applies with {key.domain} set.")
        if not v["ssh_cidrs"]:
            raise ConfigError(
                f"{key.ssh_cidrs} must list the address you run `pulumi up` from: the droplet's rollout runs over SSH."
            )
        docr = "registry.digitalocean.com/"
        if not v["registry_name"] and v["image"].startswith(docr):
            v["registry_name"] = v["image"][len(docr) :].split("/", 1)[0]  # a prebuilt image names its registry
        if not v["create_registry"] and not v["registry_name"]:
            raise ConfigError(
                f"{key.registry_name} must name your existing registry when {key.create_registry} is false."
            )
        if v["reserved_ip"] is None:
            v["reserved_ip"] = bool(v["domain"])  # a domain's A record must survive a replaced droplet
    if target == "gke":
        _not_above(v, key, "min_nodes", "max_nodes")
        if v["max_replicas"] < v["replicas"]:
            raise ConfigError(
                f"{key.max_replicas} ({v['max_replicas']}) must be at least {key.replicas} ({v['replicas']})."
            )
        _not_above(v, key, "cpu_request", "cpu_limit", measure=_quantity)
        _not_above(v, key, "memory_request", "memory_limit", measure=_quantity)


def _not_above(v: dict, key: _Names, low: str, high: str, measure: Callable[[Any], float] = float) -> None:
    if measure(v[low]) > measure(v[high]):
        raise ConfigError(f"{getattr(key, low)} ({v[low]}) must not exceed {getattr(key, high)} ({v[high]}).")


_SUFFIX = {"m": 1e-3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _quantity(text: str) -> float:
    """A validated Kubernetes quantity as a number, to compare requests with limits."""
    number = re.match(r"^[0-9.]+", text).group(0)
    return float(number) * _SUFFIX.get(text[len(number) :], 1.0)
