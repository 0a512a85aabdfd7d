"""DigitalOcean Container Registry tiers and the image they must hold: the program picks the tier, costs price it.

Tiers (https://docs.digitalocean.com/products/container-registry/details/pricing/, read 2026-12-01): Starter holds
500 MiB and cannot buy more, Basic 5 GiB, Professional 100 GiB (both buy extra storage). The serving image is
IMAGE_MIB (`docker image ls` of the image the Dockerfile builds, 2026-12); a registry keeps KEEP_IMAGES of them
(the image that runs and the one before it, for a rollback) before garbage collection frees the rest.
"""

from __future__ import annotations

MIB = 2**20
IMAGE_MIB = 568  # the serving image as built (issue 22: ~568 MB)
KEEP_IMAGES = 2
TIERS = {"starter": 500 * MIB, "basic": 5 * 1024 * MIB, "professional": 100 * 1024 * MIB}  # smallest first


def needed_bytes(image_mib: float = IMAGE_MIB, keep: int = KEEP_IMAGES) -> float:
    """Registry storage the kept images take (layers counted once per image: an upper bound)."""
    return image_mib * MIB * keep


def tier_for(image_mib: float = IMAGE_MIB, keep: int = KEEP_IMAGES) -> str:
    """The smallest tier that holds `keep` images of `image_mib`; the largest when none does."""
    need = needed_bytes(image_mib, keep)
    return next((tier for tier, size in TIERS.items() if size >= need), "professional")
