"""Issue 19: what each config change does on the next `pulumi up`, from recorded plans and the ForceNew facts.

Every key's sample change is planned once (module fixture); each lands in the class docs/deploy.md states, the
config that can change in place never touches a ForceNew input, and the docs' change table is the generated one.
"""

from __future__ import annotations

import pytest

from infra import changes, docs
from infra.mock_plan import plan_stack
from infra.stack_config import KEYS
from infra.tables import force_new
from infra.tables import resource_types as types


@pytest.fixture(scope="module")
def effects():
    return changes.all_effects()


def test_every_config_key_has_a_sample_change():
    assert set(changes.SAMPLES) == {key.name for key in KEYS}


def test_the_docs_change_table_is_the_generated_one(effects):
    text = docs.DEPLOY_DOC.read_text()
    assert docs.generated_block(text, docs.CHANGES_BEGIN) == changes.change_table(effects), (
        "docs/deploy.md's change table is stale: run `python -m infra.docs`"
    )


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("robojam:domain", changes.IN_PLACE),
        ("robojam:acmeEmail", changes.IN_PLACE),
        ("robojam:sshKeys", changes.IN_PLACE),
        ("robojam:sshCidrs", changes.IN_PLACE),
        ("robojam:size", changes.IN_PLACE),
        ("robojam:image", changes.ROLLOUT),
        ("robojam:region", changes.REPLACES),
        ("robojam:minNodes", changes.IN_PLACE),
        ("robojam:maxNodes", changes.IN_PLACE),
        ("robojam:controlPlaneCidrs", changes.IN_PLACE),
        ("robojam:cpuRequest", changes.ROLLOUT),
        ("robojam:memoryLimit", changes.ROLLOUT),
        ("gcp:zone", changes.REPLACES),
        ("robojam:terminationAction", changes.IN_PLACE),
        ("robojam:gpuType", changes.REPLACES),
        ("robojam:epochs", changes.REPLACES),
        ("digitalocean:token", changes.IN_PLACE),  # only the registry's garbage collection (its token) reruns
        ("robojam:weights", changes.ROLLOUT),
        ("robojam:registryTier", changes.IN_PLACE),
        ("robojam:maxRestarts", changes.IN_PLACE),
        ("robojam:maxTotalHours", changes.REPLACES),
    ],
)
def test_each_config_change_lands_in_its_class(effects, key, kind):
    assert effects[key].kind == kind, (key, effects[key])


def test_domain_acme_and_ssh_key_edits_change_no_droplet_input_only_the_deploy_step():
    for key in ("robojam:domain", "robojam:acmeEmail", "robojam:sshKeys"):
        stack, before, after = changes.SAMPLES[key]
        old, new = plan_stack(stack, before), plan_stack(stack, after)
        droplet_before, droplet_after = old.one(types.DO_DROPLET), new.one(types.DO_DROPLET)
        touched = changes.changed_inputs(droplet_before.inputs, droplet_after.inputs)
        assert not [p for p in touched if p not in droplet_after.ignore_changes], (key, touched)
        assert old.one(types.REMOTE_COMMAND).inputs["stdin"] != new.one(types.REMOTE_COMMAND).inputs["stdin"], key
    assert "name" not in plan_stack("dev").one(types.DO_DROPLET).inputs  # Pulumi names it: create before delete


def test_ssh_keys_reach_root_through_the_deploy_step():
    fingerprint = changes.SAMPLES["robojam:sshKeys"][2]["robojam:sshKeys"][0]
    plan = plan_stack("dev", {"robojam:sshKeys": [fingerprint]})
    stdin = plan.one(types.REMOTE_COMMAND).inputs["stdin"]
    keys = stdin.split("<<'ROBOJAM_KEYS'\n", 1)[1].split("ROBOJAM_KEYS\n", 1)[0].splitlines()
    assert len(keys) == 2 and keys[0].endswith(" robojam")  # the deploy key, then the operator's
    assert plan.one(types.DO_DROPLET).ignore_changes == ("sshKeys",)


def test_min_nodes_leaves_the_node_pool_s_force_new_inputs_alone():
    one, two = plan_stack("gke"), plan_stack("gke", {"robojam:minNodes": 2, "robojam:maxNodes": 4})
    pool_one, pool_two = one.one(types.GCP_NODE_POOL), two.one(types.GCP_NODE_POOL)
    assert pool_one.inputs["initialNodeCount"] == pool_two.inputs["initialNodeCount"] == 1
    assert "initialNodeCount" in pool_two.ignore_changes
    touched = changes.changed_inputs(pool_one.inputs, pool_two.inputs)
    assert touched == ["autoscaling.maxNodeCount", "autoscaling.minNodeCount"]
    assert not any(force_new.replaces(types.GCP_NODE_POOL, path) for path in touched)


def test_registry_tokens_expire_within_days():
    for resource in plan_stack("dev").of_type(types.DO_REGISTRY_CREDENTIALS):
        assert 3600 <= resource.inputs["expirySeconds"] <= 7 * 24 * 3600, resource.name


def test_an_input_without_a_fact_is_an_error_not_a_guess():
    with pytest.raises(KeyError, match="force_new.py"):
        force_new.replaces(types.DO_DROPLET, "backups")
    assert force_new.replaces(types.DO_DROPLET, "userData") and not force_new.replaces(types.DO_DROPLET, "size")
    assert force_new.replaces(types.GCP_INSTANCE, "metadataStartupScript", ("metadataStartupScript",))


def test_classify_sees_a_replacement_an_update_and_nothing():
    base = plan_stack("dev")
    assert changes.classify(base, base).kind == changes.NONE
    moved = plan_stack("dev", {"robojam:region": "ams3"})
    assert changes.classify(base, moved).replaced == ("web-droplet (Droplet: region)",)
