"""Which GPUs Compute Engine attaches to which machine types, in what counts and in which zones.

One table, read by the gpu-vm target's validation (infra/targets/gpu_vm.py) and by the policy pack (policy/), so a
combination the cloud would reject stops `pulumi up` before anything is created, and `pulumi preview
--policy-pack policy` catches the same class in any program.

Sources (checked 2026-12-01):
- machine families and counts: https://cloud.google.com/compute/docs/gpus ("GPU machine types": G2 and A2 types
  come with a fixed number of GPUs; N1 takes T4/P4/P100 in 1, 2 or 4 and V100 in 1, 2, 4 or 8).
- zones: https://cloud.google.com/compute/docs/gpus/gpu-regions-zones; the A100 rows cross-checked with
  skypilot-org/skypilot-catalog catalogs/v8/gcp/vms.csv (commit 8427bbf). Zones change: check yours with
  `gcloud compute accelerator-types list --filter="name=GPU_TYPE"`, and add it here if it is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuOffer:
    """One GPU type: the machine types it attaches to, the counts allowed, and the zones that have it."""

    gpu: str
    family: str  # machine-type prefix, e.g. "n1" (n1-standard-4) or "a2-highgpu" (a2-highgpu-1g)
    counts: tuple[int, ...] = ()  # counts any machine of the family may attach (N1)
    fixed: dict[str, int] = field(default_factory=dict)  # machine type -> the count it comes with (G2, A2)
    zones: tuple[str, ...] = ()


def _zones(spec: str) -> tuple[str, ...]:
    """'us-central1:abcf europe-west4:a' -> ('us-central1-a', ..., 'europe-west4-a')."""
    return tuple(f"{region}-{z}" for item in spec.split() for region, letters in [item.split(":")] for z in letters)


GPU_OFFERS: tuple[GpuOffer, ...] = (
    GpuOffer(
        "nvidia-tesla-t4",
        "n1",
        counts=(1, 2, 4),
        zones=_zones(
            "us-central1:abcf us-east1:cd us-east4:abc us-west1:ab us-west2:bc us-west3:b us-west4:ab "
            "northamerica-northeast1:c southamerica-east1:ac europe-west1:bcd europe-west2:ab europe-west3:b "
            "europe-west4:abc europe-central2:bc asia-east1:ac asia-east2:ac asia-northeast1:ac asia-northeast3:bc "
            "asia-south1:ab asia-southeast1:abc asia-southeast2:ab australia-southeast1:ac me-west1:bc"
        ),
    ),
    GpuOffer(
        "nvidia-tesla-p4",
        "n1",
        counts=(1, 2, 4),
        zones=_zones(
            "us-central1:ac us-east4:abc us-west2:bc northamerica-northeast1:abc europe-west4:bc "
            "asia-southeast1:bc australia-southeast1:ab"
        ),
    ),
    GpuOffer(
        "nvidia-tesla-p100",
        "n1",
        counts=(1, 2, 4),
        zones=_zones(
            "us-central1:cf us-east1:bc us-west1:ab europe-west1:bd europe-west4:a asia-east1:ac australia-southeast1:c"
        ),
    ),
    GpuOffer(
        "nvidia-tesla-v100",
        "n1",
        counts=(1, 2, 4, 8),
        zones=_zones("us-central1:abcf us-east1:c us-west1:ab europe-west4:abc asia-east1:c"),
    ),
    GpuOffer(
        "nvidia-l4",
        "g2",
        fixed={
            "g2-standard-4": 1,
            "g2-standard-8": 1,
            "g2-standard-12": 1,
            "g2-standard-16": 1,
            "g2-standard-32": 1,
            "g2-standard-24": 2,
            "g2-standard-48": 4,
            "g2-standard-96": 8,
        },
        zones=_zones(
            "us-central1:abc us-east1:bcd us-east4:ac us-west1:abc us-west4:ac northamerica-northeast2:ab "
            "europe-west1:bc europe-west2:ab europe-west3:b europe-west4:abc europe-west6:b asia-east1:ac "
            "asia-northeast1:ac asia-northeast3:ab asia-south1:abc asia-southeast1:abc me-central2:ac"
        ),
    ),
    GpuOffer(
        "nvidia-tesla-a100",
        "a2-highgpu",
        fixed={"a2-highgpu-1g": 1, "a2-highgpu-2g": 2, "a2-highgpu-4g": 4, "a2-highgpu-8g": 8},
        zones=_zones(
            "us-central1:abcf us-east1:b us-west1:b us-west3:b us-west4:b europe-west4:ab me-west1:ac "
            "asia-northeast1:ac asia-northeast3:ab asia-southeast1:bc"
        ),
    ),
    GpuOffer(
        "nvidia-a100-80gb",
        "a2-ultragpu",
        fixed={"a2-ultragpu-1g": 1, "a2-ultragpu-2g": 2, "a2-ultragpu-4g": 4, "a2-ultragpu-8g": 8},
        zones=_zones("us-central1:ac us-east4:c us-east5:ab europe-west4:a asia-southeast1:c"),
    ),
)
OFFERS_BY_GPU = {offer.gpu: offer for offer in GPU_OFFERS}
GPU_TYPES = tuple(OFFERS_BY_GPU)
ZONES_LISTED = 4  # how many offering zones an error names


def _or(items) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def gpu_problem(gpu: str, count: int, machine_type: str, zone: str) -> tuple[str, str] | None:
    """Why the cloud would reject this combination, or None: (which setting, sentence tail without a full stop).

    The setting is one of "gpu_type", "gpu_count", "machine_type" or "zone"; the caller names it its own way
    (a config key, or the resource property in a policy).
    """
    offer = OFFERS_BY_GPU.get(gpu)
    if offer is None:
        return "gpu_type", f"{gpu} is not one of {', '.join(GPU_TYPES)}"
    if not machine_type.startswith(offer.family + "-"):
        owner = next((o.gpu for o in GPU_OFFERS if machine_type in o.fixed), None)
        hint = f"; {machine_type} comes with {owner}" if owner else ""
        return "gpu_type", f"{gpu} attaches only to {offer.family}-* machine types, not {machine_type}{hint}"
    if offer.fixed:
        if machine_type not in offer.fixed:
            return "machine_type", f"{machine_type} does not take {gpu}; use one of {', '.join(offer.fixed)}"
        if count != offer.fixed[machine_type]:
            built_in = offer.fixed[machine_type]
            return "gpu_count", f"must be {built_in} for {machine_type} (it comes with {built_in} {gpu}), got {count}"
    elif count not in offer.counts:
        return (
            "gpu_count",
            f"{count} is not offered for {gpu}: {offer.family.upper()} machines attach {_or(offer.counts)}",
        )
    if zone not in offer.zones:
        region = zone.rsplit("-", 1)[0]
        nearby = [z for z in offer.zones if z.startswith(region + "-")]
        shown = nearby or offer.zones[:ZONES_LISTED]
        where = f"in {region} it is in {', '.join(shown)}" if nearby else f"it is in {', '.join(shown)} and others"
        return "zone", f"{zone} does not offer {gpu}; {where}"
    return None
