"""Run the Pulumi program offline under Pulumi's mocks and record what it would create.

One shared helper for the tests and for `python -m infra.costs`: it runs the very program `pulumi up`
runs (`infra/__main__.py`, which calls `infra.program.main`) with a stack file's config, records every
resource's inputs and the stack's exports, and leaves no Pulumi runtime state behind, so several stacks
can be planned in one process.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextvars
import dataclasses
import hashlib
import json
import pathlib
import runpy
from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml

from infra.compat import pulumi_sdk
from infra.tables import resource_types as types
from robojam_format.layout import REPO_ROOT

PROJECT = "robojam"
SECRET_PLACEHOLDER = "[secret]"
# Credentials the mocks hand out, so tests can prove they never reach a resource input in plain text.
MOCK_ACCESS_TOKEN = "ya29.mock-access-token"  # the gcp client-config invoke's OAuth token
MOCK_REGISTRY_PASSWORD = "mock-registry-token"  # inside DOCR's dockerCredentials (base64 "user:password")
MOCK_REGISTRY_AUTH = base64.b64encode(f"mock-user:{MOCK_REGISTRY_PASSWORD}".encode()).decode()
MOCK_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nbW9jay1kZXBsb3kta2V5\n-----END OPENSSH PRIVATE KEY-----\n"
MOCK_SECRETS = (MOCK_ACCESS_TOKEN, MOCK_REGISTRY_PASSWORD, MOCK_REGISTRY_AUTH, MOCK_PRIVATE_KEY.splitlines()[1])
MOCK_ACCOUNT_UUID = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"  # the DigitalOcean account getAccount returns


class SecretValue(str):
    """An override passed as a secret config value, as `pulumi config set --secret` would set it."""


@dataclass(frozen=True)
class PlannedResource:
    """One custom resource the program registered, with its inputs as the provider would receive them."""

    type: str  # Pulumi type token, e.g. "gcp:compute/instance:Instance"
    name: str  # logical name
    inputs: dict  # camelCase inputs, secrets unwrapped to their plain values
    secret_paths: tuple[str, ...] = ()  # input paths (e.g. "userData", "spec.x[0]") that were marked secret
    dependencies: tuple[str, ...] = ()  # logical names of the resources it explicitly depends on (depends_on)
    replace_on_changes: tuple[str, ...] = ()  # input paths whose change replaces it (ResourceOptions)
    ignore_changes: tuple[str, ...] = ()  # input paths whose change after creation is ignored (ResourceOptions)


@dataclass(frozen=True)
class Plan:
    """Everything one stack's program would do, as recorded under the mocks."""

    stack: str
    config: dict  # "ns:key" -> value, as in the stack file (secure values replaced by SECRET_PLACEHOLDER)
    resources: list[PlannedResource]  # custom resources, sorted by (name, type)
    outputs: dict  # stack exports; secret exports read SECRET_PLACEHOLDER, unknown ones None
    components: list[PlannedResource] = field(default_factory=list)  # ComponentResources, for structure tests

    def of_type(self, type_token: str) -> list[PlannedResource]:
        """The resources of one type, in registration order."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> PlannedResource:
        """The single resource of a type; raises if there is not exactly one."""
        found = self.of_type(type_token)
        if len(found) != 1:
            raise LookupError(f"expected exactly one {type_token}, found {len(found)}")
        return found[0]


def stack_files(root: pathlib.Path | None = None) -> list[pathlib.Path]:
    """Every `Pulumi.<stack>.yaml` in the repository, sorted."""
    return sorted((root or REPO_ROOT).glob("Pulumi.*.yaml"))


def stack_name(path: pathlib.Path) -> str:
    """`Pulumi.dev.yaml` -> `dev`."""
    return path.name[len("Pulumi.") : -len(".yaml")]


def load_stack_config(path: pathlib.Path | str) -> dict:
    """A stack file's `config:` block as "ns:key" -> value; `secure:` values become SECRET_PLACEHOLDER."""
    data = yaml.safe_load(pathlib.Path(path).read_text()) or {}
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: `config` must be a mapping.")
    return {key: (SECRET_PLACEHOLDER if _is_secure(value) else value) for key, value in config.items()}


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _config_string(value: Any) -> str:
    """Pulumi hands config to programs as strings; structured values travel as JSON."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _resolve_stack_file(stack: str | pathlib.Path) -> pathlib.Path:
    if isinstance(stack, pathlib.Path) or str(stack).endswith(".yaml"):
        path = pathlib.Path(stack)
    else:
        path = REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no stack file {path}")
    return path


def stack_config(stack: str | pathlib.Path, overrides: dict | None = None) -> tuple[str, dict, set[str]]:
    """A stack file's config with `overrides` applied ("ns:key" -> value, None deletes): (name, config, secret keys)."""
    path = _resolve_stack_file(stack)
    config = load_stack_config(path)
    for key, value in (overrides or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    secret_keys = {k for k, v in config.items() if v == SECRET_PLACEHOLDER or isinstance(v, SecretValue)}
    return stack_name(path), config, secret_keys


def config_strings(config: dict) -> dict[str, str]:
    """Config values as Pulumi hands them to a program: strings, structured values as JSON."""
    return {k: _config_string(v) for k, v in config.items()}


def plan_stack(stack: str | pathlib.Path, overrides: dict | None = None) -> Plan:
    """Run the program for one stack under mocks; `overrides` ("ns:key" -> value, None deletes) patch config.

    Config errors (infra.config.ConfigError) propagate unchanged.
    """
    name, config, secret_keys = stack_config(stack, overrides)
    # A thread of its own with an empty context: its own event loop, and every ContextVar the Pulumi runtime
    # sets (settings, config, root stack) dies with it, whatever the caller's thread has going on.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan-stack") as pool:
        plan = pool.submit(contextvars.Context().run, _plan_in_context, name, config, secret_keys).result()
    shown = {k: (SECRET_PLACEHOLDER if k in secret_keys else v) for k, v in config.items()}
    return dataclasses.replace(plan, config=shown)


def _plan_in_context(name: str, config: dict, secret_keys: set[str]) -> Plan:
    mocks = RecordingMocks()
    mocks.ssh_keys = account_ssh_keys(config.get("robojam:sshKeys"))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    exports: dict = {}
    try:
        pulumi.runtime.reset_options(project=PROJECT, stack=name)
        pulumi.runtime.set_all_config(config_strings(config), sorted(secret_keys))
        monitor = pulumi_sdk.RequestAwareMonitor(mocks)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=name, preview=False, monitor=monitor)
        root = pulumi.runtime.get_root_resource()

        async def run() -> None:
            # Exactly what `pulumi up` runs: the program directory's __main__.py.
            runpy.run_path(str(REPO_ROOT / "infra" / "__main__.py"), run_name="__main__")
            for key, value in list(root.outputs.items()):
                exports[key] = await _resolve_output(value)

        with pulumi_sdk.closing_mock_loops():
            try:
                loop.run_until_complete(pulumi_sdk.run_program(run))
            finally:
                # Join the executor threads before their loops are closed.
                loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        pulumi.runtime.reset_options()
        pulumi.runtime.set_all_config({}, [])
        asyncio.set_event_loop(None)
        loop.close()
    return Plan(
        stack=name,
        config=config,
        resources=_ordered(mocks.resources),
        outputs=exports,
        components=_ordered(mocks.components),
    )


def _ordered(resources: list[PlannedResource]) -> list[PlannedResource]:
    """Registration order varies from run to run (it is asynchronous); name order does not."""
    return sorted(resources, key=lambda r: (r.name, r.type))


async def _resolve_output(value: Any) -> Any:
    output = pulumi.Output.from_input(value)
    if not await output.is_known():
        return None
    if await output.is_secret():
        return SECRET_PLACEHOLDER
    return await output.future()


def _unwrap(value: Any, path: str, secrets: list[str]) -> Any:
    """Plain copy of a deserialized input, noting where secret wrappers were."""
    if pulumi_sdk.is_secret(value):
        secrets.append(path)
        return _unwrap(pulumi_sdk.unwrap_secret(value), path, secrets)
    if isinstance(value, dict):
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf carries every number as a double; 2.0 replicas were 2
    return value


def _fake_digest(*parts: str) -> str:
    return "sha256:" + hashlib.sha256("/".join(parts).encode()).hexdigest()


def _computed(type_token: str, name: str, inputs: dict) -> dict:
    """Outputs a real provider would compute, named as the provider names them (camelCase)."""
    ip = "203.0.113.10"  # TEST-NET-3: documentation addresses, never routable
    if type_token == types.GCP_INSTANCE:
        nics = [dict(n) for n in inputs.get("networkInterfaces") or [{}]]
        for nic in nics:
            nic["accessConfigs"] = [dict(c, natIp=ip) for c in nic.get("accessConfigs") or []]
        return {"networkInterfaces": nics, "instanceId": "1234567890", "selfLink": f"instances/{name}"}
    if type_token == types.GCP_ADDRESS:
        return {"address": ip}
    if type_token == types.GCP_SERVICE_ACCOUNT:
        project = inputs.get("project", "project")
        return {"email": f"{inputs.get('accountId', name)}@{project}.iam.gserviceaccount.com"}
    if type_token == types.GCP_BUCKET:
        bucket = inputs.get("name", name)
        return {"name": bucket, "url": f"gs://{bucket}"}
    if type_token == types.GCP_REPOSITORY:
        return {"name": inputs.get("repositoryId", name)}
    if type_token == types.GCP_CLUSTER:
        return {
            "endpoint": "198.51.100.1",
            "masterAuth": {"clusterCaCertificate": "bW9jay1jYQ=="},
            "name": inputs.get("name", name),
        }
    if type_token == types.TLS_PRIVATE_KEY:
        return {
            "privateKeyOpenssh": MOCK_PRIVATE_KEY,
            "publicKeyOpenssh": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockMockMockMock robojam",
        }
    if type_token == types.DO_SSH_KEY:
        return {"fingerprint": "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99"}
    if type_token == types.DO_DROPLET:
        return {"ipv4Address": ip, "urn": f"do:droplet:{name}"}
    if type_token == types.DO_RESERVED_IP:
        return {"ipAddress": "203.0.113.20", "urn": f"do:reservedip:{name}"}
    if type_token == types.DO_REGISTRY:
        registry = inputs.get("name", name)
        return {"serverUrl": "registry.digitalocean.com", "endpoint": f"registry.digitalocean.com/{registry}"}
    if type_token == types.DO_REGISTRY_CREDENTIALS:
        auths = {"registry.digitalocean.com": {"auth": MOCK_REGISTRY_AUTH}}
        return {"dockerCredentials": json.dumps({"auths": auths})}
    if type_token == types.DOCKER_IMAGE:
        tags = inputs.get("tags") or [f"registry.invalid/{name}:latest"]
        repository = tags[0].rsplit(":", 1)[0] if ":" in tags[0].rsplit("/", 1)[-1] else tags[0]
        built_from = json.dumps([inputs.get("buildArgs"), inputs.get("labels")], sort_keys=True)
        digest = _fake_digest(*tags, built_from)  # another build input, another image
        return {"ref": f"{repository}@{digest}", "digest": digest}
    if type_token == types.K8S_SERVICE:
        return {"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.80"}]}}}
    return {}


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def account_ssh_keys(handles: Any) -> list[dict]:
    """The DigitalOcean account's SSH keys as getSshKeys returns them: one per configured fingerprint or id."""
    keys = []
    for i, handle in enumerate(handles if isinstance(handles, list) else []):
        numeric = str(handle).isdigit()
        material = hashlib.sha256(str(handle).encode()).hexdigest()[:20]
        keys.append(
            {
                "id": int(handle) if numeric else 4000 + i,
                "fingerprint": str(handle) if not numeric else ":".join([f"{i:02x}"] * 16),
                "name": f"operator-{i}",
                "publicKey": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{material} operator-{i}",
            }
        )
    return keys


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that keep every registration and answer with plausible provider outputs."""

    def __init__(self) -> None:
        self.resources: list[PlannedResource] = []
        self.components: list[PlannedResource] = []
        self.ssh_keys: list[dict] = []  # the DigitalOcean account's keys (getSshKeys), set by plan_stack

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        secrets: list[str] = []
        inputs = _unwrap(dict(args.inputs), "", secrets)
        request = pulumi_sdk.current_registration()
        planned = PlannedResource(
            type=args.typ,
            name=args.name,
            inputs=inputs,
            secret_paths=tuple(secrets),
            dependencies=tuple(sorted({_urn_name(u) for u in request.dependencies})) if request else (),
            replace_on_changes=tuple(request.replaceOnChanges) if request else (),
            ignore_changes=tuple(request.ignoreChanges) if request else (),
        )
        (self.resources if args.custom else self.components).append(planned)
        state = {**args.inputs, **_computed(args.typ, args.name, inputs)}
        numeric = args.typ.startswith("digitalocean:")  # DigitalOcean ids are integers
        # Ids from the name alone, so planning two configs gives each resource the same id in both.
        stable = 1000 + int(hashlib.sha256(args.name.encode()).hexdigest()[:6], 16) % 9000
        return (str(stable) if numeric else f"{args.name}-id"), state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == types.GCP_GET_CLIENT_CONFIG:
            return {"accessToken": MOCK_ACCESS_TOKEN, "project": "mock-project"}
        if args.token == types.DO_GET_ACCOUNT:
            return {"uuid": MOCK_ACCOUNT_UUID, "email": "ops@example.org", "status": "active"}
        if args.token == types.DO_GET_SSH_KEYS:
            return {"sshKeys": self.ssh_keys, "id": "ssh-keys"}
        return {}
