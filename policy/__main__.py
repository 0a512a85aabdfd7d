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

from policy import compat  # noqa: E402
from policy.rules import POLICIES, Resource  # noqa: E402

# Where each resource's secrets were (pulumi-policy unwraps them before a stack policy sees the properties).
_recorded: list[tuple[str, ...]] = []
compat.record_secret_paths(_recorded)


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
