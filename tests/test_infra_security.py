"""Security invariants, checked on the recorded inputs of every stack and of the optional variants."""

from __future__ import annotations

import ipaddress
import re

import pytest

from infra.mock_plan import MOCK_SECRETS, Plan, SecretValue, plan_stack, stack_files, stack_name
from policy.rules import ports  # one reading of a firewall rule's ports, shared with the policy pack

SERVING = ("droplet", "gke")
WEB_PORTS = {80, 443}
JUPYTER = 8888
DO_TOKEN = "dop_v1_0123456789abcdef-never-in-plain-text"
# Every stack file as it is, plus the optional branches of each target.
CASES = [(stack_name(p), {}) for p in stack_files()] + [
    ("dev", {"robojam:domain": "jam.example.org", "robojam:acmeEmail": "ops@example.org"}),
    ("dev", {"robojam:reservedIp": True, "robojam:sshCidrs": ["198.51.100.0/24", "2001:db8::/64"]}),
    ("dev", {"robojam:image": "registry.digitalocean.com/team/robojam:1.0", "robojam:createRegistry": False}),
    ("gke", {"robojam:image": "ghcr.io/example/robojam:1.0", "robojam:replicas": 1}),
    ("gke", {"robojam:controlPlaneCidrs": ["203.0.113.7/32"]}),
    ("train", {"robojam:interactive": True}),
    ("train", {"robojam:spot": True, "robojam:sshCidrs": None}),
]
IDS = [f"{stack}-{'-'.join(k.split(':')[1] for k in overrides) or 'file'}" for stack, overrides in CASES]


@pytest.fixture(scope="module", params=range(len(CASES)), ids=IDS)
def plan(request) -> Plan:
    stack, overrides = CASES[request.param]
    if stack == "dev":  # the token is set with --secret in real life; prove it never leaks
        overrides = {**overrides, "digitalocean:token": SecretValue(DO_TOKEN)}
    return plan_stack(stack, overrides)


def inbound_rules(plan: Plan) -> list[tuple[str, list[str], set[int] | None]]:
    """(resource, sources, ports) for all that lets traffic in; fails on firewall types it cannot read."""
    rules = []
    for r in plan.resources:
        if r.type == "gcp:compute/firewall:Firewall":
            if r.inputs.get("direction", "INGRESS") == "INGRESS":
                for allow in r.inputs.get("allows", []):
                    rules.append((r.name, r.inputs.get("sourceRanges", []), ports(allow.get("ports"))))
        elif r.type == "digitalocean:index/firewall:Firewall":
            for rule in r.inputs.get("inboundRules", []):
                rules.append((r.name, rule.get("sourceAddresses", []), ports(rule.get("portRange"))))
        elif r.type == "kubernetes:core/v1:Service":
            spec = r.inputs["spec"]
            if spec.get("type") in ("LoadBalancer", "NodePort"):
                sources = spec.get("loadBalancerSourceRanges") or ["0.0.0.0/0"]
                rules.append((r.name, sources, {p["port"] for p in spec["ports"]}))
        else:
            assert "firewall" not in r.type.lower() and "securitypolicy" not in r.type.lower(), (
                f"{r.type} lets traffic in and this test cannot read it yet"
            )
    return rules


def is_world(source: str) -> bool:
    return ipaddress.ip_network(source).prefixlen == 0


def test_only_web_ports_are_open_to_the_world_and_only_on_serving_targets(plan):
    target = plan.config["robojam:target"]
    for name, sources, opened in inbound_rules(plan):
        if any(is_world(s) for s in sources):
            assert target in SERVING, f"{name}: {target} must not be reachable from anywhere"
            assert opened is not None and opened <= WEB_PORTS, f"{name} opens {opened} to the world"


def test_ssh_is_open_only_to_the_configured_cidrs(plan):
    allowed = set(plan.config.get("robojam:sshCidrs") or [])
    for name, sources, opened in inbound_rules(plan):
        if opened is None or 22 in opened:
            assert set(sources) <= allowed, f"{name} lets {sources} reach SSH"
    if not allowed:
        assert not [rule for rule in inbound_rules(plan) if rule[2] is None or 22 in rule[2]]


def test_no_jupyter_port_is_open_anywhere(plan):
    for name, _sources, opened in inbound_rules(plan):
        assert opened is not None and JUPYTER not in opened, name
    for r in plan.of_type("kubernetes:apps/v1:Deployment"):
        for c in r.inputs["spec"]["template"]["spec"]["containers"]:
            assert JUPYTER not in {p["containerPort"] for p in c.get("ports", [])}
    for r in plan.of_type("digitalocean:index/droplet:Droplet"):
        assert not re.search(rf"--publish \S*{JUPYTER}", r.inputs["userData"])


def leaves(value, path=""):
    """(path, string) for every string inside an input value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def under(path: str, secret_paths: tuple[str, ...]) -> bool:
    return any(path == s or path.startswith((s + ".", s + "[")) for s in secret_paths)


def test_no_credential_reaches_a_resource_input_in_plain_text(plan):
    secrets = (*MOCK_SECRETS, DO_TOKEN)
    seen = 0
    for r in plan.resources:
        for path, text in leaves(r.inputs):
            leaked = [s for s in secrets if s in text] or re.findall(r'"auths"|\bya29\.|\bdop_v1_', text)
            if leaked:
                seen += 1
                assert under(path, r.secret_paths), f"{r.type} {r.name} {path} holds {leaked} in plain text"
    for key, value in plan.outputs.items():
        assert not any(s in str(value) for s in secrets), f"export {key} leaks a credential"
    assert DO_TOKEN not in str(plan.config)
    if plan.of_type("docker-build:index:Image"):  # a build logs in: the check must have met those credentials
        assert seen > 0


def test_registry_credentials_are_secret_where_they_are_used(plan):
    for image in plan.of_type("docker-build:index:Image"):
        assert "registries" in image.secret_paths
    for droplet in plan.of_type("digitalocean:index/droplet:Droplet"):
        assert "userData" not in droplet.secret_paths and '"auths"' not in droplet.inputs["userData"]
    for step in plan.of_type("command:remote:Command"):
        assert {"stdin", "connection"} <= set(step.secret_paths)


def test_containers_never_run_as_root(plan):
    for r in plan.of_type("kubernetes:apps/v1:Deployment"):
        pod = r.inputs["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
            assert sc["allowPrivilegeEscalation"] is False and sc.get("privileged") is not True
    for r in plan.of_type("command:remote:Command"):
        run = re.search(r"RUN_ARGS='([^']*)'", r.inputs["stdin"]).group(1)
        user = re.search(r"--user (\d+):(\d+)", run)
        assert user and int(user.group(1)) > 0 and int(user.group(2)) > 0, run
        assert "--privileged" not in run and "--cap-drop ALL" in run and "--read-only" in run
    for r in plan.of_type("digitalocean:index/droplet:Droplet"):
        assert "docker run" not in r.inputs["userData"]  # the rollout step is the only place that runs it


def test_gpu_vm_identity_is_not_a_default_or_admin_account(plan):
    for vm in plan.of_type("gcp:compute/instance:Instance"):
        email = vm.inputs["serviceAccount"]["email"]
        assert "-compute@developer" not in email
    for grant in plan.resources:
        role = grant.inputs.get("role", "")
        assert role not in ("roles/owner", "roles/editor") and not role.endswith(".admin"), grant
