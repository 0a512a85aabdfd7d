"""The policy pack's policies (policy/rules.py), called as plain functions: every repo stack passes them, and a
crafted violation of each is caught. No PolicyPack is built here (it starts a server and blocks)."""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess

import pytest
from support import require

import infra.tables.gpus
from infra.mock_plan import Plan, SecretValue, plan_stack, stack_files, stack_name
from policy import rules
from policy.rules import POLICIES, Resource
from robojam_format.layout import REPO_ROOT

# Every stack file as it is, plus the optional branches of each target.
CASES = [(stack_name(p), {}) for p in stack_files()] + [
    ("dev", {"robojam:domain": "jam.example.org", "robojam:acmeEmail": "ops@example.org"}),
    ("dev", {"robojam:image": "registry.digitalocean.com/team/robojam:1.0", "robojam:createRegistry": False}),
    ("dev", {"digitalocean:token": SecretValue("dop_v1_" + "0" * 64)}),
    ("gke", {"robojam:image": "ghcr.io/example/robojam:1.0", "robojam:replicas": 1}),
    ("gke", {"robojam:controlPlaneCidrs": ["203.0.113.7/32"]}),
    ("train", {"robojam:interactive": True, "robojam:spot": True}),
    ("train", {"robojam:gpuType": "nvidia-l4", "robojam:machineType": "g2-standard-24", "robojam:gpuCount": 2}),
]
_PLANS: dict[int, Plan] = {}


def plan(i: int) -> Plan:
    if i not in _PLANS:
        stack, overrides = CASES[i]
        _PLANS[i] = plan_stack(stack, overrides)
    return _PLANS[i]


def resources(p: Plan) -> list[Resource]:
    """A recorded plan as the policies see a stack (ids are names under mocks)."""
    return [
        Resource(
            type=r.type,
            name=r.name,
            props=copy.deepcopy(r.inputs),
            id=r.name,
            dependencies=r.dependencies,
            secret_paths=r.secret_paths,
        )
        for r in p.resources
    ]


def one(found: list[Resource], type_token: str) -> Resource:
    [match] = [r for r in found if r.type == type_token]
    return match


def messages(policy, found: list[Resource]) -> list[str]:
    return [v.message for v in policy(found)]


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{s}-{'-'.join(o) or 'file'}" for s, o in CASES])
@pytest.mark.parametrize("name,policy", POLICIES, ids=[n for n, _ in POLICIES])
def test_every_repo_stack_passes_every_policy(case, name, policy):
    assert policy(resources(plan(case))) == [], name


def test_the_pack_has_nine_distinct_policies_and_main_builds_it_from_the_same_list():
    names = [name for name, _ in POLICIES]
    assert len(names) == len(set(names)) == 9
    assert all(policy.__doc__ for _, policy in POLICIES)
    main = ast.parse((REPO_ROOT / "policy" / "__main__.py").read_text())
    calls = [n for n in ast.walk(main) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "PolicyPack"]
    assert len(calls) == 1 and "POLICIES" in ast.unparse(calls[0])
    assert (REPO_ROOT / "policy" / "PulumiPolicy.yaml").is_file()
    assert "pulumi-policy>=" in (REPO_ROOT / "policy" / "requirements.txt").read_text()


def test_policy_and_config_share_one_gpu_table():
    assert rules.gpu_problem is infra.tables.gpus.gpu_problem


# --- crafted violations: each policy catches its class --------------------------------------------------------


def stack(name: str) -> list[Resource]:
    return resources(plan([c[0] for c in CASES].index(name)))


def test_a_deployment_that_sets_replicas_under_an_hpa_is_caught():
    found = stack("gke")
    one(found, "kubernetes:apps/v1:Deployment").props["spec"]["replicas"] = 2
    assert messages(rules.hpa_managed_deployment_sets_no_replicas, found) == [
        "this Deployment is scaled by a HorizontalPodAutoscaler, so it must not set spec.replicas."
    ]


@pytest.mark.parametrize(
    "accelerator,machine,zone,expected",
    [
        (
            {"type": "nvidia-l4", "count": 2},
            "g2-standard-8",
            "us-central1-a",
            "GPU gpu count: must be 1 for g2-standard-8",
        ),
        ({"type": "nvidia-tesla-t4", "count": 8}, "n1-standard-8", "us-central1-a", "8 is not offered"),
        ({"type": "nvidia-tesla-a100", "count": 1}, "a2-ultragpu-1g", "us-central1-a", "attaches only to a2-highgpu"),
        ({"type": "zones/x/acceleratorTypes/nvidia-tesla-p100", "count": 1}, "n1-standard-4", "us-central1-a", "zone:"),
    ],
)
def test_a_gpu_combination_the_cloud_rejects_is_caught(accelerator, machine, zone, expected):
    found = stack("train")
    vm = one(found, "gcp:compute/instance:Instance")
    vm.props.update(guestAccelerators=[accelerator], machineType=machine, zone=zone)
    [message] = messages(rules.gpu_combination_is_offered, found)
    assert expected in message


def test_world_ingress_beyond_web_ports_is_caught_on_every_firewall_kind():
    found = stack("dev")
    one(found, "digitalocean:index/firewall:Firewall").props["inboundRules"][2]["sourceAddresses"] = ["0.0.0.0/0"]
    assert messages(rules.world_ingress_only_to_web_ports, found) == [
        "only ports 80 and 443 may be open to the whole internet, not 22."
    ]
    found = stack("train")
    one(found, "gcp:compute/firewall:Firewall").props["sourceRanges"] = ["::/0"]
    assert messages(rules.world_ingress_only_to_web_ports, found) == [
        "no GCP firewall rule of this program may admit 0.0.0.0/0."
    ]
    found = stack("gke")
    one(found, "kubernetes:core/v1:Service").props["spec"]["ports"].append({"name": "x", "port": 8443})
    assert messages(rules.world_ingress_only_to_web_ports, found) == [
        "only ports 80 and 443 may be open to the whole internet, not 8443."
    ]


def test_a_public_jupyter_port_or_a_service_reaching_gunicorns_metrics_is_caught():
    found = stack("train")
    rule = one(found, "gcp:compute/firewall:Firewall").props
    rule.update(sourceRanges=["0.0.0.0/0"], allows=[{"protocol": "tcp", "ports": ["8888"]}])
    assert "port 8888 (Jupyter or metrics)" in messages(rules.no_jupyter_or_metrics_port_open_to_the_world, found)[0]
    found = stack("gke")
    one(found, "kubernetes:core/v1:Service").props["spec"]["ports"][0]["targetPort"] = "app"  # gunicorn, /metrics
    assert messages(rules.no_jupyter_or_metrics_port_open_to_the_world, found) == [
        "this public Service reaches container port 5000 (Jupyter or metrics)."
    ]


@pytest.mark.parametrize(
    "change,expected",
    [
        (lambda c: c["securityContext"].update(runAsNonRoot=False), "must run as non-root"),
        (lambda c: c["securityContext"].update(readOnlyRootFilesystem=False), "read-only root filesystem"),
        (lambda c: c["securityContext"]["capabilities"].update(drop=[]), "must drop ALL capabilities"),
        (
            lambda c: c["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
            "must not add capabilities SYS_ADMIN",
        ),
        (lambda c: c["securityContext"].update(allowPrivilegeEscalation=True), "must not be privileged"),
    ],
)
def test_a_container_that_is_not_locked_down_is_caught(change, expected):
    found = stack("gke")
    change(one(found, "kubernetes:apps/v1:Deployment").props["spec"]["template"]["spec"]["containers"][0])
    [message] = messages(rules.containers_are_locked_down, found)
    assert message.startswith("container robojam: ") and expected in message


def test_a_droplet_container_run_as_root_is_caught():
    found = stack("dev")
    step = one(found, "command:remote:Command")
    step.props["stdin"] = step.props["stdin"].replace("--user 10001:10001", "--user 0:0")
    assert messages(rules.containers_are_locked_down, found) == ["stdin: the container must run as a non-root --user."]


def test_a_gpu_instance_without_terminate_or_a_run_limit_is_caught():
    found = stack("train")
    scheduling = one(found, "gcp:compute/instance:Instance").props["scheduling"]
    scheduling["onHostMaintenance"] = "MIGRATE"
    del scheduling["maxRunDuration"]
    assert messages(rules.gpu_instances_terminate_and_stop_in_time, found) == [
        "a GPU instance must set scheduling.onHostMaintenance to TERMINATE.",
        "a GPU instance must set scheduling.maxRunDuration, its hard stop.",
    ]


def test_a_gpu_instance_without_a_capped_scheduled_restarter_is_caught():
    """Issue 18 item 2: every train variant has the restarter (the parametrized test above); each gap is caught."""
    found = stack("train")
    job = one(found, "gcp:cloudrunv2/job:Job")
    envs = job.props["template"]["template"]["containers"][0]["envs"]
    for env in envs:
        env["value"] = {"MAX_RESTARTS": "-1", "MAX_TOTAL_SECONDS": str(30 * 24 * 3600)}.get(env["name"], env["value"])
    found = [r for r in found if r.type != "gcp:cloudscheduler/job:Job"]
    assert messages(rules.gpu_instances_have_a_capped_restarter, found) == [
        "MAX_RESTARTS must be 0 to 50, got '-1'.",
        "MAX_TOTAL_SECONDS must be 1 to 604800, got '2592000'.",
        "no Cloud Scheduler job runs this restarter.",
    ]
    found = [r for r in stack("train") if r.type != "gcp:cloudrunv2/job:Job"]
    assert messages(rules.gpu_instances_have_a_capped_restarter, found) == [
        "a GPU instance needs a restarter job (labels.role = restarter) naming it."
    ]


def test_a_gcp_resource_whose_api_is_not_enabled_or_not_awaited_is_caught():
    found = [r for r in stack("train") if r.props.get("service") != "storage.googleapis.com"]
    caught = messages(rules.gcp_apis_enabled_in_the_program, found)
    assert "storage.googleapis.com is not enabled by this program (gcp.projects.Service)." in caught
    found = stack("gke")
    cluster = one(found, "gcp:container/cluster:Cluster")
    found[found.index(cluster)] = Resource(cluster.type, cluster.name, cluster.props, cluster.id, ("gke-net",))
    assert messages(rules.gcp_apis_enabled_in_the_program, found) == [
        "this resource must depend on the gcp.projects.Service that enables container.googleapis.com."
    ]


def test_a_secret_in_plain_text_is_caught():
    found = stack("dev")
    step = one(found, "command:remote:Command")
    found[found.index(step)] = Resource(step.type, step.name, step.props, step.id, step.dependencies, ())
    caught = messages(rules.no_secret_in_plain_text, found)
    assert "connection.privateKey holds a secret in plain text; pass it as a secret." in caught
    found = stack("gke")
    image = one(found, "docker-build:index:Image")
    found[found.index(image)] = Resource(image.type, image.name, image.props, image.id, image.dependencies, ())
    assert messages(rules.no_secret_in_plain_text, found) == [
        "registries[0].password holds a secret in plain text; pass it as a secret."
    ]


# --- the real pack, in its own venv: what `pulumi preview --policy-pack policy` talks to -----------------------

SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"  # Pulumi's wire format
ASSET_SIG, ARCHIVE_SIG = "c44067f5952c0a294b673a41bacd8c17", "0def7320c3a5731c473e5ecbe6d01bc7"


def _wire_value(value):
    """Assets and archives as the engine sends them (json.dumps default hook)."""
    import pulumi

    if isinstance(value, pulumi.FileAsset):
        return {SIG_KEY: ASSET_SIG, "path": value.path}
    if isinstance(value, pulumi.StringAsset):
        return {SIG_KEY: ASSET_SIG, "text": value.text}
    if isinstance(value, pulumi.AssetArchive):
        return {SIG_KEY: ARCHIVE_SIG, "assets": value.assets}
    raise TypeError(f"cannot send {type(value).__name__} to the analyzer")


def wire_resources(p: Plan, change=None) -> list[dict]:
    """A recorded plan as the engine sends it to an analyzer: URNs, dependencies, secrets in their envelope."""
    urn = {r.name: f"urn:pulumi:{p.stack}::robojam::{r.type}::{r.name}" for r in p.resources}
    wired = []
    for r in p.resources:
        properties = copy.deepcopy(r.inputs)
        for path in r.secret_paths:
            _wrap_secret(properties, path)
        wired.append(
            {
                "type": r.type,
                "name": r.name,
                "urn": urn[r.name],
                "properties": properties,
                "dependencies": [urn[d] for d in r.dependencies if d in urn],
            }
        )
    if change:
        change(wired)
    return wired


def _wrap_secret(properties: dict, path: str) -> None:
    steps = [int(s) if s.isdigit() else s for s in re.split(r"\.|\[(\d+)\]", path) if s]
    parent = properties
    for step in steps[:-1]:
        parent = parent[step]
    parent[steps[-1]] = {SIG_KEY: SECRET_SIG, "value": parent[steps[-1]]}


@pytest.fixture(scope="module")
def pack():
    """`policy/__main__.py` served from policy/venv (make policy-venv), in its own process: (python, port)."""
    python = REPO_ROOT / "policy" / "venv" / "bin" / "python"
    require(python.exists(), "policy/venv is missing: make policy-venv")
    server = subprocess.Popen(
        [str(python), str(REPO_ROOT / "policy" / "__main__.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT / "policy",
    )
    try:
        port = server.stdout.readline().strip()
        assert port.isdigit(), server.stderr.read()
        yield python, port
    finally:
        server.kill()
        server.wait(timeout=10)


def analyze(pack, tmp_path, wired: list[dict]) -> list[dict]:
    python, port = pack
    path = tmp_path / "resources.json"
    path.write_text(json.dumps(wired, default=_wire_value))
    client = REPO_ROOT / "tests" / "support" / "policy_client.py"
    result = subprocess.run([str(python), str(client), port, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("stack_file", ["dev", "gke", "train"])
def test_the_real_pack_passes_every_repo_stack_as_the_engine_sends_it(pack, tmp_path, stack_file):
    assert analyze(pack, tmp_path, wire_resources(plan_stack(stack_file))) == []


def test_the_real_pack_reports_a_violation_on_the_resource(pack, tmp_path):
    def set_replicas(wired):
        deployment = next(r for r in wired if r["type"] == "kubernetes:apps/v1:Deployment")
        deployment["properties"]["spec"]["replicas"] = 3

    def unwrap_push_password(wired):
        image = next(r for r in wired if r["type"] == "docker-build:index:Image")
        image["properties"]["registries"] = [
            {k: (v["value"] if isinstance(v, dict) and SIG_KEY in v else v) for k, v in reg.items()}
            for reg in image["properties"]["registries"]["value"]
        ]

    found = analyze(pack, tmp_path, wire_resources(plan_stack("gke"), set_replicas))
    assert [(d["policy"], d["urn"].rsplit("::", 1)[1]) for d in found] == [
        ("hpa-deployment-sets-no-replicas", "gke-deployment")
    ]
    found = analyze(pack, tmp_path, wire_resources(plan_stack("gke"), unwrap_push_password))
    assert [d["policy"] for d in found] == ["no-plaintext-secrets"]
