"""The PolicyPack `pulumi preview --policy-pack policy` runs: each function of policy.rules as a stack policy.

Built only here: constructing a PolicyPack starts the analyzer's gRPC server and blocks.
"""

from __future__ import annotations

import pathlib
import sys

# The CLI runs this file by path from policy/; the rules import the program's own tables from infra/.
ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pulumi_policy  # noqa: E402
import pulumi_policy.policy as _sdk  # noqa: E402
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY  # noqa: E402

from policy.rules import POLICIES, Resource  # noqa: E402

# pulumi-policy unwraps secrets without marking them before a stack policy sees the properties (checked on
# 1.21.0: AnalyzeStack deserialises each resource, in request order, with proxy_secrets=False). Record where
# the secrets were, in that order, so no_secret_in_plain_text does not flag what is already a secret.
_recorded: list[tuple[str, ...]] = []
_deserialize = _sdk.deserialize_properties


def _secret_paths(value, path: str = "") -> list[str]:
    if isinstance(value, dict):
        if value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            return [path]
        return [p for k, v in value.items() for p in _secret_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_paths(v, f"{path}[{i}]")]
    return []


def _recording_deserialize(props, proxy_secrets=False):
    _recorded.append(tuple(_secret_paths(props)))
    return _deserialize(props, proxy_secrets)


_sdk.deserialize_properties = _recording_deserialize


def _stack_policy(name: str, check) -> pulumi_policy.StackValidationPolicy:
    def validate(args: pulumi_policy.StackValidationArgs, report_violation) -> None:
        secrets = _recorded[-len(args.resources) :] if len(_recorded) >= len(args.resources) else []
        resources = [
            Resource(
                type=r.resource_type,
                name=r.name,
                props=r.props,
                id=r.urn,
                dependencies=tuple(d.urn for d in r.dependencies),
                secret_paths=secrets[i] if secrets else (),
            )
            for i, r in enumerate(args.resources)
        ]
        _recorded.clear()
        for violation in check(resources):
            report_violation(violation.message, violation.resource.id)

    return pulumi_policy.StackValidationPolicy(
        name=name,
        description=(check.__doc__ or name).strip().splitlines()[0],
        enforcement_level=pulumi_policy.EnforcementLevel.MANDATORY,
        validate=validate,
    )


pulumi_policy.PolicyPack(name="robojam", policies=[_stack_policy(name, check) for name, check in POLICIES])
