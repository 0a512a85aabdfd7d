"""The deploy targets: one module each, and this registry, the only place that lists them.

Everything that depends on the set of targets (the robojam:target key, which targets read the GCP keys or the
image, the program's choice, the docs' key table, the staging steps) is derived from TARGETS.
"""

from __future__ import annotations

from infra.targets import droplet, gke, gpu_vm
from infra.targets.target import Target

TARGETS: dict[str, Target] = {t.name: t for t in (droplet.TARGET, gke.TARGET, gpu_vm.TARGET)}
GCP_TARGETS = tuple(name for name, t in TARGETS.items() if t.cloud == "gcp")
SERVING_TARGETS = tuple(name for name, t in TARGETS.items() if t.serves)
