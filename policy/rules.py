"""The policies, as plain functions over a stack's resources: what Pulumi's mocks cannot check.

Each policy takes every resource of a stack (type, name, input properties, dependencies, secret paths) and
returns its violations. `policy/__main__.py` wraps them in a CrossGuard PolicyPack for `pulumi preview
--policy-pack policy`; the tests call them directly on the recorded plans of every repo stack. The GPU rules
are the config's own table (infra/tables/gpus.py), the API mapping the program's own (infra/tables/gcp_apis.py).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.tables import resource_types as types
from infra.tables import training_caps as caps
from infra.tables.gcp_apis import api_for
from infra.tables.gpus import gpu_problem
from infra.tables.image_contract import CONTAINER_PORT

WEB_PORTS = frozenset({80, 443})
JUPYTER_PORTS = frozenset({8888})  # JupyterLab's default; robojam:interactive serves it on 127.0.0.1 only
DLVM_JUPYTER_PORT = 8080  # the Deep Learning VM image's own JupyterLab (VMs only: the GKE proxy uses 8080)
METRICS_PORTS = frozenset(
    {CONTAINER_PORT, 9090, 9100}
)  # gunicorn's port serves /metrics unproxied; Prometheus' usual ports
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})  # the only one restricted Pod Security allows
HPA_TYPES = (types.K8S_HPA, types.K8S_HPA_V1)
WORKLOAD_TYPES = (
    types.K8S_DEPLOYMENT,
    types.K8S_STATEFUL_SET,
    types.K8S_DAEMON_SET,
    types.K8S_REPLICA_SET,
    types.K8S_JOB,
)
SECRET_TEXT = re.compile(
    r"\bdop_v1_[0-9a-f]{16,}|\bya29\.[\w-]{8,}|-----BEGIN [A-Z ]*PRIVATE KEY-----|\"auths\"\s*:"
    r"|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}"
)
SECRET_NAMES = frozenset({"password", "privatekey", "token", "accesstoken", "apikey", "secret", "clientsecret"})


@dataclass(frozen=True)
class Resource:
    """One resource as a policy sees it; `id` is its URN in a real run, its name under mocks."""

    type: str
    name: str
    props: Mapping[str, Any]
    id: str = ""
    dependencies: tuple[str, ...] = ()  # ids of the resources it depends on
    secret_paths: tuple[str, ...] = ()  # property paths whose values are secrets ("stdin", "spec.x[0]")

    @property
    def key(self) -> str:
        return self.id or self.name


@dataclass(frozen=True)
class Violation:
    resource: Resource
    message: str


Policy = Callable[[Sequence[Resource]], list[Violation]]


# --- helpers -----------------------------------------------------------------------------------------------


def _get(value: Any, *path: str, default: Any = None) -> Any:
    for step in path:
        if not isinstance(value, Mapping) or step not in value:
            return default
        value = value[step]
    return value


def _last_segment(value: Any) -> str:
    """'projects/p/zones/z/acceleratorTypes/nvidia-l4' -> 'nvidia-l4' (providers accept both forms)."""
    return str(value).rsplit("/", 1)[-1]


def _is_world(source: Any) -> bool:
    try:
        return ipaddress.ip_network(str(source), strict=False).prefixlen == 0
    except ValueError:
        return False


def ports(spec: Any) -> set[int] | None:
    """Ports a rule opens: None means every port."""
    if spec in (None, "", [], "all"):
        return None
    found: set[int] = set()
    for item in [spec] if isinstance(spec, str | int) else spec:
        low, _, high = str(item).partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return found


def _world_rules(resources: Sequence[Resource]) -> Iterator[tuple[Resource, set[int] | None]]:
    """(resource, ports) for every rule that lets the whole internet in."""
    for r in resources:
        if r.type == types.GCP_FIREWALL and r.props.get("direction", "INGRESS") == "INGRESS":
            if any(_is_world(s) for s in r.props.get("sourceRanges") or []):
                for allow in r.props.get("allows") or [{}]:
                    yield r, ports(allow.get("ports"))
        elif r.type == types.DO_FIREWALL:
            for rule in r.props.get("inboundRules") or []:
                if any(_is_world(s) for s in rule.get("sourceAddresses") or []):
                    yield r, ports(rule.get("portRange"))
        elif r.type == types.K8S_SERVICE and _get(r.props, "spec", "type") in ("LoadBalancer", "NodePort"):
            sources = _get(r.props, "spec", "loadBalancerSourceRanges") or ["0.0.0.0/0"]
            if any(_is_world(s) for s in sources):
                yield r, {int(p["port"]) for p in _get(r.props, "spec", "ports", default=[])}


def _pod_specs(r: Resource) -> Iterator[Mapping]:
    if r.type in WORKLOAD_TYPES:
        spec = _get(r.props, "spec", "template", "spec")
        if isinstance(spec, Mapping):
            yield spec
    elif r.type == types.K8S_POD and isinstance(r.props.get("spec"), Mapping):
        yield r.props["spec"]


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def _under(path: str, secret_paths: Sequence[str]) -> bool:
    return any(path == s or path.startswith((s + ".", s + "[")) for s in secret_paths)


# --- the policies ------------------------------------------------------------------------------------------


def hpa_managed_deployment_sets_no_replicas(resources: Sequence[Resource]) -> list[Violation]:
    """With server-side apply, a Deployment that sets replicas conflicts with its HPA once it has scaled."""
    targets = {
        (_get(r.props, "metadata", "namespace"), _get(r.props, "spec", "scaleTargetRef", "name"))
        for r in resources
        if r.type in HPA_TYPES and _get(r.props, "spec", "scaleTargetRef", "kind") == "Deployment"
    }
    return [
        Violation(r, "this Deployment is scaled by a HorizontalPodAutoscaler, so it must not set spec.replicas.")
        for r in resources
        if r.type == types.K8S_DEPLOYMENT
        and (_get(r.props, "metadata", "namespace"), _get(r.props, "metadata", "name")) in targets
        and _get(r.props, "spec", "replicas") is not None
    ]


def gpu_combination_is_offered(resources: Sequence[Resource]) -> list[Violation]:
    """GPU type, count, machine type and zone must be a combination Compute Engine offers (infra/tables/gpus.py)."""
    found = []
    for r in resources:
        if r.type != types.GCP_INSTANCE:
            continue
        machine = _last_segment(r.props.get("machineType", ""))
        zone = _last_segment(r.props.get("zone", "")) if r.props.get("zone") else None
        for gpu in r.props.get("guestAccelerators") or []:
            problem = gpu_problem(_last_segment(gpu.get("type", "")), int(gpu.get("count", 0)), machine, zone or "")
            if problem and not (problem[0] == "zone" and zone is None):
                setting, sentence = problem
                found.append(Violation(r, f"GPU {setting.replace('_', ' ')}: {sentence}."))
    return found


def world_ingress_only_to_web_ports(resources: Sequence[Resource]) -> list[Violation]:
    """Nothing is open to 0.0.0.0/0 but 80/443, and those only on serving resources (a DO firewall, a k8s LB)."""
    found = []
    for r, ports in _world_rules(resources):
        if r.type == types.GCP_FIREWALL:
            found.append(Violation(r, "no GCP firewall rule of this program may admit 0.0.0.0/0."))
        elif ports is None or not ports <= WEB_PORTS:
            shown = "every port" if ports is None else ", ".join(map(str, sorted(ports - WEB_PORTS)))
            found.append(Violation(r, f"only ports 80 and 443 may be open to the whole internet, not {shown}."))
    return found


def no_jupyter_or_metrics_port_open_to_the_world(resources: Sequence[Resource]) -> list[Violation]:
    """Jupyter and /metrics are for operators: never reachable from 0.0.0.0/0, directly or through a Service."""
    found = []
    for r, ports in _world_rules(resources):
        forbidden = JUPYTER_PORTS | METRICS_PORTS | ({DLVM_JUPYTER_PORT} if r.type.startswith("gcp:") else set())
        hit = sorted(forbidden) if ports is None else sorted(ports & forbidden)
        if hit:
            found.append(Violation(r, f"port {hit[0]} (Jupyter or metrics) must not be open to the whole internet."))
        if r.type == types.K8S_SERVICE:
            targets = _service_target_ports(r, resources)
            hit = sorted(targets & (JUPYTER_PORTS | METRICS_PORTS))
            if hit:
                found.append(Violation(r, f"this public Service reaches container port {hit[0]} (Jupyter or metrics)."))
    return found


def _service_target_ports(service: Resource, resources: Sequence[Resource]) -> set[int]:
    """The container ports a Service sends its traffic to (names resolved against the selected pods)."""
    selector = _get(service.props, "spec", "selector") or {}
    containers = [
        c
        for r in resources
        for pod in _pod_specs(r)
        if selector and selector.items() <= (_get(r.props, "spec", "template", "metadata", "labels") or {}).items()
        for c in pod.get("containers") or []
    ]
    ports = set()
    for port in _get(service.props, "spec", "ports", default=[]):
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, int) or str(target).isdigit():
            ports.add(int(target))
        else:
            ports |= {p["containerPort"] for c in containers for p in c.get("ports") or [] if p.get("name") == target}
    return ports


def containers_are_locked_down(resources: Sequence[Resource]) -> list[Violation]:
    """Containers run non-root, on a read-only root filesystem, with every capability dropped."""
    found = []
    for r in resources:
        for pod in _pod_specs(r):
            pod_context = pod.get("securityContext") or {}
            for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
                found += [Violation(r, f"container {c.get('name')}: {p}.") for p in _container_problems(c, pod_context)]
        for path, text in _leaves(r.props):
            if isinstance(text, str):
                for args in re.findall(r"RUN_ARGS='([^']*)'", text):
                    found += [Violation(r, f"{path}: the container {p}.") for p in _run_args_problems(args)]
    return found


def _container_problems(c: Mapping, pod_context: Mapping) -> list[str]:
    sc = c.get("securityContext") or {}
    problems = []
    non_root = sc.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    user = sc.get("runAsUser", pod_context.get("runAsUser"))
    if non_root is not True or user == 0:
        problems.append("must run as non-root (runAsNonRoot: true, runAsUser above 0)")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("must have a read-only root filesystem")
    if sc.get("allowPrivilegeEscalation") is not False or sc.get("privileged"):
        problems.append("must not be privileged or allow privilege escalation")
    capabilities = sc.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("must drop ALL capabilities")
    added = set(capabilities.get("add") or []) - ALLOWED_ADDED_CAPABILITIES
    if added:
        problems.append(f"must not add capabilities {', '.join(sorted(added))}")
    return problems


def _run_args_problems(args: str) -> list[str]:
    problems = []
    user = re.search(r"--user (\d+)(?::(\d+))?", args)
    if not user or int(user.group(1)) == 0 or (user.group(2) is not None and int(user.group(2)) == 0):
        problems.append("must run as a non-root --user")
    if "--read-only" not in args:
        problems.append("must run with --read-only")
    if "--cap-drop ALL" not in args:
        problems.append("must run with --cap-drop ALL")
    if "--privileged" in args:
        problems.append("must not run --privileged")
    return problems


def gpu_instances_terminate_and_stop_in_time(resources: Sequence[Resource]) -> list[Violation]:
    """GPUs cannot live-migrate (TERMINATE on maintenance) and a forgotten GPU VM must stop (max run duration)."""
    found = []
    for r in resources:
        if r.type != types.GCP_INSTANCE or not r.props.get("guestAccelerators"):
            continue
        scheduling = r.props.get("scheduling") or {}
        if scheduling.get("onHostMaintenance") != "TERMINATE":
            found.append(Violation(r, "a GPU instance must set scheduling.onHostMaintenance to TERMINATE."))
        if not int(_get(scheduling, "maxRunDuration", "seconds", default=0) or 0) > 0:
            found.append(Violation(r, "a GPU instance must set scheduling.maxRunDuration, its hard stop."))
    return found


def _env(job: Resource) -> dict[str, str]:
    containers = _get(job.props, "template", "template", "containers", default=[]) or [{}]
    return {e.get("name"): e.get("value") for e in containers[0].get("envs") or []}


def gpu_instances_have_a_capped_restarter(resources: Sequence[Resource]) -> list[Violation]:
    """A GPU VM (spot ones are preempted) has a scheduled restarter whose restarts and total run time are capped."""
    restarters = [
        r for r in resources if r.type == types.GCP_RUN_JOB and _get(r.props, "labels", "role") == "restarter"
    ]
    uris = {_get(r.props, "httpTarget", "uri", default="") for r in resources if r.type == types.GCP_SCHEDULER_JOB}
    found = []
    for r in resources:
        if r.type != types.GCP_INSTANCE or not r.props.get("guestAccelerators"):
            continue
        mine = [job for job in restarters if _env(job).get("INSTANCE") == r.props.get("name")]
        if not mine:
            found.append(Violation(r, "a GPU instance needs a restarter job (labels.role = restarter) naming it."))
            continue
        env, job = _env(mine[0]), mine[0]
        restarts, seconds = str(env.get("MAX_RESTARTS", "")), str(env.get("MAX_TOTAL_SECONDS", ""))
        if not (restarts.isdigit() and int(restarts) <= caps.MAX_RESTARTS_LIMIT):
            found.append(Violation(job, f"MAX_RESTARTS must be 0 to {caps.MAX_RESTARTS_LIMIT}, got {restarts!r}."))
        if not (seconds.isdigit() and 0 < int(seconds) <= caps.MAX_RUN_HOURS_LIMIT * 3600):
            found.append(
                Violation(job, f"MAX_TOTAL_SECONDS must be 1 to {caps.MAX_RUN_HOURS_LIMIT * 3600}, got {seconds!r}.")
            )
        if not any(uri.endswith(f"/jobs/{job.props.get('name')}:run") for uri in uris):
            found.append(Violation(job, "no Cloud Scheduler job runs this restarter."))
    return found


def gcp_apis_enabled_in_the_program(resources: Sequence[Resource]) -> list[Violation]:
    """Every GCP resource's API is enabled by a gcp.projects.Service of the same program, and waits for it."""
    services = {r.props.get("service"): r.key for r in resources if r.type == types.GCP_PROJECT_SERVICE}
    found = []
    for r in resources:
        api = api_for(r.type)
        if api is None:
            continue
        if api not in services:
            found.append(Violation(r, f"{api} is not enabled by this program (gcp.projects.Service)."))
        elif services[api] not in r.dependencies:
            found.append(Violation(r, f"this resource must depend on the gcp.projects.Service that enables {api}."))
    return found


def no_secret_in_plain_text(resources: Sequence[Resource]) -> list[Violation]:
    """Credentials travel as secrets: no secret-looking value or secret-named property in plain text."""
    found = []
    for r in resources:
        for path, value in _leaves(r.props):
            if not isinstance(value, str) or not value or _under(path, r.secret_paths):
                continue
            name = re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1].lower()
            if SECRET_TEXT.search(value) or name in SECRET_NAMES:
                found.append(Violation(r, f"{path} holds a secret in plain text; pass it as a secret."))
    return found


POLICIES: tuple[tuple[str, Policy], ...] = (
    ("hpa-deployment-sets-no-replicas", hpa_managed_deployment_sets_no_replicas),
    ("gpu-combination-offered", gpu_combination_is_offered),
    ("world-ingress-web-ports-only", world_ingress_only_to_web_ports),
    ("no-public-jupyter-or-metrics", no_jupyter_or_metrics_port_open_to_the_world),
    ("containers-locked-down", containers_are_locked_down),
    ("gpu-instances-terminate-and-stop", gpu_instances_terminate_and_stop_in_time),
    ("gpu-instances-capped-restarter", gpu_instances_have_a_capped_restarter),
    ("gcp-apis-enabled", gcp_apis_enabled_in_the_program),
    ("no-plaintext-secrets", no_secret_in_plain_text),
)
