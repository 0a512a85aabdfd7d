"""One typed, validated view of the stack's config; a wrong value stops the program before any resource.

Every key the program reads is declared once in KEYS (targets, default, meaning): the parser, the
"does not apply to this target" rule and the README's config table all come from that one list.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from robojam_format.layout import REPO_ROOT

TARGETS = ("droplet", "gke", "gpu-vm")
GCP_TARGETS = ("gke", "gpu-vm")
SERVING_TARGETS = ("droplet", "gke")

# GPU type -> the machine-type family it attaches to (GCP attaches T4/P4/V100/P100 to N1 only).
GPU_MACHINE_FAMILIES = {
    "nvidia-tesla-t4": "n1",
    "nvidia-tesla-p4": "n1",
    "nvidia-tesla-v100": "n1",
    "nvidia-tesla-p100": "n1",
    "nvidia-l4": "g2",
    "nvidia-tesla-a100": "a2",
}
GPU_COUNTS = (1, 2, 4, 8)
TERMINATION_ACTIONS = ("STOP", "DELETE")
MAX_RUN_HOURS_LIMIT = 168  # a week: the hard stop exists so a forgotten VM stops costing money


class ConfigError(ValueError):
    """A stack config value is wrong; the message is one sentence that names the key."""


@dataclass(frozen=True)
class Key:
    """One config key: which targets read it, its default (None = required) and what it means."""

    name: str
    targets: tuple[str, ...]
    default: Any
    meaning: str


KEYS: tuple[Key, ...] = (
    Key("robojam:target", TARGETS, None, "which target this stack builds: droplet, gke or gpu-vm"),
    Key(
        "robojam:image",
        SERVING_TARGETS,
        "",
        "prebuilt image to run; empty = build the Dockerfile and push it",
    ),
    Key("robojam:sshCidrs", ("droplet", "gpu-vm"), [], "CIDRs allowed to SSH in; empty = no SSH rule at all"),
    Key("gcp:project", GCP_TARGETS, None, "GCP project id"),
    Key("gcp:zone", GCP_TARGETS, "us-central1-a", "GCP zone of the VM / zonal cluster"),
    Key(
        "gcp:region",
        GCP_TARGETS,
        "",
        "GCP region (bucket, Artifact Registry); must hold the zone",
    ),
    Key("robojam:machineType", ("gpu-vm",), "n1-standard-4", "VM machine type"),
    Key("robojam:gpuType", ("gpu-vm",), "nvidia-tesla-t4", "GPU type: " + ", ".join(GPU_MACHINE_FAMILIES)),
    Key("robojam:gpuCount", ("gpu-vm",), 1, "GPUs attached: 1, 2, 4 or 8"),
    Key(
        "robojam:imageFamily",
        ("gpu-vm",),
        "common-cu128-ubuntu-2204-nvidia-570",
        "Deep Learning VM image family (project deeplearning-platform-release)",
    ),
    Key(
        "robojam:bootDiskGb",
        ("gpu-vm",),
        100,
        "boot disk size in GB (at least 50 for Deep Learning VM images)",
    ),
    Key("robojam:spot", ("gpu-vm",), False, "use Spot provisioning (cheaper, can be preempted)"),
    Key("robojam:maxRunHours", ("gpu-vm",), 6, f"hard run limit in hours (at most {MAX_RUN_HOURS_LIMIT})"),
    Key("robojam:terminationAction", ("gpu-vm",), "STOP", "what the run limit does: STOP or DELETE"),
    Key(
        "robojam:corpusPath",
        ("gpu-vm",),
        None,
        "local corpus file uploaded to the bucket (relative to the repo)",
    ),
    Key("robojam:runName", ("gpu-vm",), "gpu", "run folder name: runs/NAME and model/weights/NAME.npz"),
    Key("robojam:epochs", ("gpu-vm",), 100, "training epochs (early stopping may end sooner)"),
    Key("digitalocean:token", ("droplet",), None, "DigitalOcean API token, set with --secret, never in a file"),
    Key("robojam:region", ("droplet",), "nyc3", "DigitalOcean region slug"),
    Key("robojam:size", ("droplet",), "s-1vcpu-1gb", "droplet size slug"),
    Key(
        "robojam:sshKeys",
        ("droplet",),
        None,
        "fingerprints or ids of SSH keys already in the DigitalOcean account",
    ),
    Key("robojam:reservedIp", ("droplet",), False, "attach a reserved (static) IP"),
    Key("robojam:domain", ("droplet",), "", "domain pointing at the droplet; set = Caddy with automatic HTTPS"),
    Key("robojam:acmeEmail", ("droplet",), "", "contact e-mail for the certificate authority (needs domain)"),
    Key("robojam:registryName", ("droplet",), "robojam", "DigitalOcean Container Registry name"),
    Key("robojam:createRegistry", ("droplet",), True, "create the registry (false = it already exists)"),
    Key("robojam:nodeMachineType", ("gke",), "e2-medium", "node pool machine type"),
    Key("robojam:minNodes", ("gke",), 1, "node pool autoscaling minimum"),
    Key("robojam:maxNodes", ("gke",), 3, "node pool autoscaling maximum"),
    Key("robojam:replicas", ("gke",), 2, "Deployment replicas (HPA minimum)"),
    Key("robojam:maxReplicas", ("gke",), 6, "HPA maximum replicas"),
    Key("robojam:cpuTargetPercent", ("gke",), 70, "HPA target average CPU utilisation, 1-100"),
    Key("robojam:cpuRequest", ("gke",), "250m", "container CPU request"),
    Key("robojam:cpuLimit", ("gke",), "1", "container CPU limit"),
    Key("robojam:memoryRequest", ("gke",), "256Mi", "container memory request"),
    Key("robojam:memoryLimit", ("gke",), "512Mi", "container memory limit"),
)
KEYS_BY_NAME = {k.name: k for k in KEYS}


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


@dataclass(frozen=True)
class DropletSettings:
    region: str
    size: str
    ssh_keys: tuple[str, ...]
    ssh_cidrs: tuple[str, ...]
    reserved_ip: bool
    domain: str
    acme_email: str
    registry_name: str
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


@dataclass(frozen=True)
class StackConfig:
    stack: str
    target: str
    image: str  # prebuilt image reference; "" = build from the Dockerfile
    gcp: GcpSettings | None = None
    gpu_vm: GpuVmSettings | None = None
    droplet: DropletSettings | None = None
    gke: GkeSettings | None = None


# --- value parsers: each raises ConfigError naming the key -------------------------------------------------

_STACK = re.compile(r"^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$")  # fits GCP account ids, bucket and droplet names
_ZONE = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_GCE_MACHINE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$")
_IMAGE_FAMILY = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_DO_REGION = re.compile(r"^[a-z]{3}[0-9]$")
_DO_SIZE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
_SSH_KEY = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$|^[0-9]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOCR_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_RUN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_IMAGE_REF = re.compile(
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)
_CPU = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$")
_MEMORY = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?$")


def _text(key: str, raw: str) -> str:
    value = raw.strip()
    if not value and KEYS_BY_NAME[key].default is None:
        raise ConfigError(f"{key} must be set.")
    return value


def _matching(key: str, raw: str, pattern: re.Pattern, what: str) -> str:
    value = _text(key, raw)
    if not pattern.match(value):
        raise ConfigError(f"{key} must be {what}, got {value!r}.")
    return value


def _int(key: str, raw: str, low: int | None = None, high: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}.") from None
    if low is not None and value < low:
        raise ConfigError(f"{key} must be at least {low}, got {value}.")
    if high is not None and value > high:
        raise ConfigError(f"{key} must be at most {high}, got {value}.")
    return value


def _bool(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ConfigError(f"{key} must be true or false, got {raw!r}.")
    return value == "true"


def _str_list(key: str, raw: str) -> tuple[str, ...]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a list (pulumi config set --path '{key}[0]' VALUE), got {raw!r}.")
    return tuple(v.strip() for v in value)


def _cidrs(key: str, raw: str) -> tuple[str, ...]:
    cidrs = []
    for item in _str_list(key, raw):
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError:
            raise ConfigError(f"{key} entry {item!r} is not a valid CIDR such as 203.0.113.7/32.") from None
        if network.prefixlen == 0:
            raise ConfigError(f"{key} must not open SSH to the whole internet ({item}); list your own CIDRs.")
        cidrs.append(str(network))
    return tuple(cidrs)


def _default_string(key: str) -> str:
    default = KEYS_BY_NAME[key].default
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, list | tuple):
        return json.dumps(list(default))
    return "" if default is None else str(default)


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


def parse(values: Mapping[str, str], stack: str = "", secret_keys: set[str] | frozenset = frozenset()) -> StackConfig:
    """Turn raw config strings into a StackConfig, checking every rule before anything is created."""
    if stack and not _STACK.match(stack):
        raise ConfigError(
            f"stack name {stack!r} names cloud resources, so it must be 1-16 lowercase letters, digits or hyphens."
        )
    target = values.get("robojam:target", "").strip()
    if target not in TARGETS:
        raise ConfigError(f"robojam:target must be one of {', '.join(TARGETS)}, got {target!r}.")
    _check_keys(values, target)
    if "digitalocean:token" in values and "digitalocean:token" not in secret_keys:
        raise ConfigError("digitalocean:token must be set with `pulumi config set --secret`, never in plain text.")

    def get(key: str) -> str:
        return values[key] if key in values else _default_string(key)

    image = get("robojam:image").strip()
    if image and not _IMAGE_REF.match(image):
        raise ConfigError(f"robojam:image must be an image reference like registry/name:tag, got {image!r}.")
    config = {"stack": stack, "target": target, "image": image}
    if target in GCP_TARGETS:
        config["gcp"] = _gcp(get, values)
    if target == "gpu-vm":
        config["gpu_vm"] = _gpu_vm(get)
    elif target == "droplet":
        config["droplet"] = _droplet(get)
    else:
        config["gke"] = _gke(get)
    return StackConfig(**config)


def _check_keys(values: Mapping[str, str], target: str) -> None:
    for key in sorted(values):
        namespace = key.split(":", 1)[0]
        spec = KEYS_BY_NAME.get(key)
        if spec is None and namespace == "robojam":
            close = difflib.get_close_matches(key, [k.name for k in KEYS], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{key} is not a config key this program reads{hint}.")
        if spec is not None and target not in spec.targets:
            raise ConfigError(f"{key} does not apply to target {target}; remove it from this stack.")


def _gcp(get, values: Mapping[str, str]) -> GcpSettings:
    if not values.get("gcp:project", "").strip():
        raise ConfigError("gcp:project must be set (pulumi config set gcp:project YOUR_PROJECT).")
    project = _matching(
        "gcp:project",
        get("gcp:project"),
        _PROJECT,
        "a GCP project id (6-30 lowercase letters, digits or hyphens)",
    )
    zone = _matching("gcp:zone", get("gcp:zone"), _ZONE, "a GCP zone such as us-central1-a")
    zone_region = _ZONE.match(zone).group(1)
    region = values.get("gcp:region", "").strip() or zone_region
    if not _REGION.match(region):
        raise ConfigError(f"gcp:region must be a GCP region such as us-central1, got {region!r}.")
    if region != zone_region:
        raise ConfigError(f"gcp:zone {zone} is not in gcp:region {region}.")
    return GcpSettings(project=project, region=region, zone=zone)


def _gpu_vm(get) -> GpuVmSettings:
    machine_type = _matching(
        "robojam:machineType",
        get("robojam:machineType"),
        _GCE_MACHINE,
        "a Compute Engine machine type such as n1-standard-4",
    )
    gpu_type = get("robojam:gpuType").strip()
    if gpu_type not in GPU_MACHINE_FAMILIES:
        raise ConfigError(f"robojam:gpuType must be one of {', '.join(GPU_MACHINE_FAMILIES)}, got {gpu_type!r}.")
    family = GPU_MACHINE_FAMILIES[gpu_type]
    if not machine_type.startswith(family + "-"):
        raise ConfigError(f"robojam:gpuType {gpu_type} attaches only to {family}-* machine types, not {machine_type}.")
    gpu_count = _int("robojam:gpuCount", get("robojam:gpuCount"))
    if gpu_count not in GPU_COUNTS:
        raise ConfigError(f"robojam:gpuCount must be one of {', '.join(map(str, GPU_COUNTS))}, got {gpu_count}.")
    try:
        max_run_hours = float(get("robojam:maxRunHours"))
    except ValueError:
        raise ConfigError(
            f"robojam:maxRunHours must be a number of hours, got {get('robojam:maxRunHours')!r}."
        ) from None
    if not 0 < max_run_hours <= MAX_RUN_HOURS_LIMIT:
        raise ConfigError(
            f"robojam:maxRunHours must be above 0 and at most {MAX_RUN_HOURS_LIMIT}, got {max_run_hours:g}."
        )
    action = get("robojam:terminationAction").strip().upper()
    if action not in TERMINATION_ACTIONS:
        raise ConfigError(
            f"robojam:terminationAction must be STOP or DELETE, got {get('robojam:terminationAction')!r}."
        )
    corpus = pathlib.Path(_text("robojam:corpusPath", get("robojam:corpusPath")))
    if not corpus.is_absolute():
        corpus = REPO_ROOT / corpus
    if not corpus.is_file():
        raise ConfigError(f"robojam:corpusPath {corpus} is not a file.")
    return GpuVmSettings(
        machine_type=machine_type,
        gpu_type=gpu_type,
        gpu_count=gpu_count,
        image_family=_matching(
            "robojam:imageFamily", get("robojam:imageFamily"), _IMAGE_FAMILY, "an image family name"
        ),
        boot_disk_gb=_int("robojam:bootDiskGb", get("robojam:bootDiskGb"), low=50, high=2000),
        spot=_bool("robojam:spot", get("robojam:spot")),
        max_run_hours=max_run_hours,
        termination_action=action,
        corpus_path=corpus.resolve(),
        run_name=_matching(
            "robojam:runName", get("robojam:runName"), _RUN_NAME, "lowercase letters, digits, '-' or '_'"
        ),
        epochs=_int("robojam:epochs", get("robojam:epochs"), low=1),
        ssh_cidrs=_cidrs("robojam:sshCidrs", get("robojam:sshCidrs")),
    )


def _droplet(get) -> DropletSettings:
    ssh_keys = _str_list("robojam:sshKeys", get("robojam:sshKeys")) if get("robojam:sshKeys") else ()
    if not ssh_keys:
        raise ConfigError("robojam:sshKeys must list at least one DigitalOcean SSH key (password login stays off).")
    for key in ssh_keys:
        if not _SSH_KEY.match(key):
            raise ConfigError(f"robojam:sshKeys entry {key!r} is neither an MD5 fingerprint (aa:bb:...) nor a key id.")
    domain = get("robojam:domain").strip().lower().rstrip(".")
    if domain and not _DOMAIN.match(domain):
        raise ConfigError(f"robojam:domain must be a domain name such as jam.example.org, got {domain!r}.")
    email = get("robojam:acmeEmail").strip()
    if email and not domain:
        raise ConfigError("robojam:acmeEmail only applies with robojam:domain set.")
    if email and not _EMAIL.match(email):
        raise ConfigError(f"robojam:acmeEmail must be an e-mail address, got {email!r}.")
    return DropletSettings(
        region=_matching("robojam:region", get("robojam:region"), _DO_REGION, "a DigitalOcean region slug like nyc3"),
        size=_matching("robojam:size", get("robojam:size"), _DO_SIZE, "a droplet size slug like s-1vcpu-1gb"),
        ssh_keys=ssh_keys,
        ssh_cidrs=_cidrs("robojam:sshCidrs", get("robojam:sshCidrs")),
        reserved_ip=_bool("robojam:reservedIp", get("robojam:reservedIp")),
        domain=domain,
        acme_email=email,
        registry_name=_matching(
            "robojam:registryName",
            get("robojam:registryName"),
            _DOCR_NAME,
            "lowercase letters, digits and hyphens (at most 63)",
        ),
        create_registry=_bool("robojam:createRegistry", get("robojam:createRegistry")),
    )


def _gke(get) -> GkeSettings:
    min_nodes = _int("robojam:minNodes", get("robojam:minNodes"), low=0)
    max_nodes = _int("robojam:maxNodes", get("robojam:maxNodes"), low=1)
    if min_nodes > max_nodes:
        raise ConfigError(f"robojam:minNodes ({min_nodes}) must not exceed robojam:maxNodes ({max_nodes}).")
    replicas = _int("robojam:replicas", get("robojam:replicas"), low=1)
    max_replicas = _int("robojam:maxReplicas", get("robojam:maxReplicas"), low=1)
    if max_replicas < replicas:
        raise ConfigError(f"robojam:maxReplicas ({max_replicas}) must be at least robojam:replicas ({replicas}).")
    cpu = "a CPU quantity such as 250m or 1"
    memory = "a memory quantity such as 256Mi"
    settings = GkeSettings(
        node_machine_type=_matching(
            "robojam:nodeMachineType",
            get("robojam:nodeMachineType"),
            _GCE_MACHINE,
            "a Compute Engine machine type such as e2-medium",
        ),
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        replicas=replicas,
        max_replicas=max_replicas,
        cpu_target_percent=_int("robojam:cpuTargetPercent", get("robojam:cpuTargetPercent"), low=1, high=100),
        cpu_request=_matching("robojam:cpuRequest", get("robojam:cpuRequest"), _CPU, cpu),
        cpu_limit=_matching("robojam:cpuLimit", get("robojam:cpuLimit"), _CPU, cpu),
        memory_request=_matching("robojam:memoryRequest", get("robojam:memoryRequest"), _MEMORY, memory),
        memory_limit=_matching("robojam:memoryLimit", get("robojam:memoryLimit"), _MEMORY, memory),
    )
    for kind, request, limit in (
        ("cpu", settings.cpu_request, settings.cpu_limit),
        ("memory", settings.memory_request, settings.memory_limit),
    ):
        if _quantity(request) > _quantity(limit):
            raise ConfigError(f"robojam:{kind}Request ({request}) must not exceed robojam:{kind}Limit ({limit}).")
    return settings


_SUFFIX = {
    "m": 1e-3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def _quantity(text: str) -> float:
    """A validated Kubernetes quantity as a number, to compare requests with limits."""
    number = re.match(r"^[0-9.]+", text).group(0)
    return float(number) * _SUFFIX.get(text[len(number) :], 1.0)
