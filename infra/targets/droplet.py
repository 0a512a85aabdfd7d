"""The droplet target: the service on one DigitalOcean droplet, Caddy in front, images rolled out over SSH."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from infra.components.droplet import DropletService
from infra.components.image import DoServiceImage
from infra.config import (
    IMAGE,
    SSH_CIDRS,
    ConfigError,
    Key,
    boolean,
    choice,
    entry,
    optional,
    optional_boolean,
    pattern,
    string_list,
)
from infra.tables import registry
from infra.tables import resource_types as types
from infra.tables.image_contract import HEALTH_PATH
from infra.targets.target import Target
from infra.weights import PREBUILT_MODEL, WEIGHTS, ServedWeights

DOCR = "registry.digitalocean.com/"

KEYS = (
    IMAGE,
    WEIGHTS,
    SSH_CIDRS,
    Key(
        "digitalocean:token",
        "token",
        None,
        "DigitalOcean API token: `pulumi config set --secret` (or `DIGITALOCEAN_TOKEN`)",
        None,
    ),
    Key(
        "robojam:region",
        "region",
        "nyc3",
        "DigitalOcean region slug",
        pattern(r"^[a-z]{3}[0-9]$", "a DigitalOcean region slug like nyc3"),
    ),
    Key(
        "robojam:size",
        "size",
        "s-1vcpu-1gb",
        "droplet size slug",
        pattern(r"^[a-z0-9]+(-[a-z0-9]+)+$", "a droplet size slug like s-1vcpu-1gb"),
    ),
    Key(
        "robojam:sshKeys",
        "ssh_keys",
        [],  # required all the same: the parser refuses an empty list with its own sentence
        "fingerprints or ids of SSH keys in your DigitalOcean account (no root password is set); later changes "
        "rewrite root's `authorized_keys` through the deploy step, not a new droplet",
        string_list(
            entry(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$|^[0-9]+$", "neither an MD5 fingerprint (aa:bb:...) nor a key id"),
            nonempty="must list at least one DigitalOcean SSH key (password login stays off)",
        ),
    ),
    Key(
        "robojam:reservedIp",
        "reserved_ip",
        "",
        "attach a reserved (static) IP; it becomes the `ip`/`url` output; empty = on with a domain",
        optional_boolean,
    ),
    Key(
        "robojam:domain",
        "domain",
        "",
        "a domain pointing at the droplet: Caddy in front with automatic HTTPS",
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
        "acme_email",
        "",
        "contact e-mail for the certificate authority (needs `robojam:domain`)",
        optional(pattern(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an e-mail address")),
    ),
    Key(
        "robojam:registryName",
        "registry_name",
        "",
        "DigitalOcean Container Registry name (unique across all DigitalOcean customers); required with "
        "`createRegistry: false` unless `robojam:image` names it; "
        "empty = `robojam-` + 12 hex digits of your account id",
        optional(
            pattern(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", "lowercase letters, digits and hyphens (at most 63)")
        ),
    ),
    Key(
        "robojam:createRegistry",
        "create_registry",
        True,
        "create the registry (`false`: it exists already; DigitalOcean allows one per account)",
        boolean,
    ),
    Key(
        "robojam:registryTier",
        "registry_tier",
        "",
        f"registry subscription tier ({', '.join(registry.TIERS)}); empty = the smallest that holds "
        f"{registry.KEEP_IMAGES} images of ~{registry.IMAGE_MIB} MiB (`{registry.tier_for()}`)",
        optional(choice(tuple(registry.TIERS))),
    ),
)


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
    registry_tier: str
    weights: ServedWeights | None = None


def check(v: dict, key: Mapping[str, str]) -> None:
    """The rules between the droplet's keys; `v` maps field -> parsed value (defaults filled in place)."""
    if v["acme_email"] and not v["domain"]:
        raise ConfigError(f"{key['acme_email']} only applies with {key['domain']} set.")
    if not v["ssh_cidrs"]:
        raise ConfigError(
            f"{key['ssh_cidrs']} must list the address you run `pulumi up` from: the droplet's rollout runs over SSH."
        )
    if not v["registry_name"] and v["image"].startswith(DOCR):
        v["registry_name"] = v["image"][len(DOCR) :].split("/", 1)[0]  # a prebuilt image names its registry
    if not v["create_registry"] and not v["registry_name"]:
        raise ConfigError(
            f"{key['registry_name']} must name your existing registry when {key['create_registry']} is false."
        )
    v["registry_tier"] = v["registry_tier"] or registry.tier_for()  # the image must fit, or pushes fail
    if v["reserved_ip"] is None:
        v["reserved_ip"] = bool(v["domain"])  # a domain's A record must survive a replaced droplet


def build(cfg) -> None:
    """The image (pushed to DOCR unless prebuilt elsewhere), the droplet service, and their exports."""
    settings = cfg.settings
    image = DoServiceImage(
        "image",
        settings.registry_name,
        settings.create_registry,
        prebuilt=cfg.image,
        weights=settings.weights,
        tier=settings.registry_tier,
    )
    pulumi.export("model", settings.weights.output() if not cfg.image else PREBUILT_MODEL)
    service = DropletService("web", settings, image.ref, image.pull_config, stack=cfg.stack)
    pulumi.export("url", service.url)
    pulumi.export("ip", service.ip)
    pulumi.export("image", image.ref)
    pulumi.export("ssh_command", service.ssh_command)
    pulumi.export("metrics_tunnel", service.metrics_tunnel)
    dns = (
        f"Point an A record for {settings.domain} at the ip output; Caddy then fetches the certificate. "
        if settings.domain
        else ""
    )
    pulumi.export(
        "next_steps",
        service.url.apply(
            lambda url: (
                f"{dns}`pulumi up` waits for cloud-init and rolls the image out over SSH; check {url}{HEALTH_PATH} "
                f"and POST performances to {url}/api/predict. The next image replaces the container, not the "
                f"droplet."
            )
        ),
    )


TARGET = Target(
    name="droplet",
    keys=KEYS,
    settings=DropletSettings,
    check=check,
    build=build,
    cloud="digitalocean",
    serves=True,
    components=(DoServiceImage, DropletService),
    billed_type=types.DO_DROPLET,
    catalogue_kinds=("droplet", "registry", "reserved-ip"),
    staging_steps=("droplet", "https"),
)
