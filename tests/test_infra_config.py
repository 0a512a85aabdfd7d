"""Invalid stack config stops the program before any resource, with one clear sentence (one test per rule).

The rules are checked on the parser itself (`infra.config.parse`, a pure function of the stack's config);
one test proves the whole program stops before it creates anything.
"""

from __future__ import annotations

import json
import re

import pytest

from infra import mock_plan
from infra.config import KEYS, ConfigError, StackConfig, default_string, parse, read_pulumi_config
from infra.mock_plan import SecretValue, config_strings, plan_stack, stack_config
from robojam_format.layout import REPO_ROOT


def parsed(stack, overrides: dict | None = None) -> StackConfig:
    """Parse a stack file's config with overrides, exactly as the program would receive it."""
    name, config, secret_keys = stack_config(stack, overrides)
    return parse(config_strings(config), stack=name, secret_keys=secret_keys)


def refuse(stack, overrides: dict) -> str:
    """The ConfigError message for a stack with overrides, checked to be one short sentence."""
    with pytest.raises(ConfigError) as info:
        parsed(stack, overrides)
    message = str(info.value)
    assert "\n" not in message and message.endswith(".") and len(message) < 200, message
    return message


def test_a_bad_config_creates_no_resource(monkeypatch):
    """The program validates before it builds: a ConfigError leaves the mocks with nothing registered."""
    made: list[mock_plan.RecordingMocks] = []

    class Spy(mock_plan.RecordingMocks):
        def __init__(self):
            super().__init__()
            made.append(self)

    monkeypatch.setattr(mock_plan, "RecordingMocks", Spy)
    bad = [("dev", {"robojam:size": "small"}), ("gke", {"robojam:minNodes": 9}), ("train", {"robojam:gpuCount": 3})]
    for stack, overrides in bad:
        made.clear()
        with pytest.raises(ConfigError):
            plan_stack(stack, overrides)
        assert made and made[0].resources == [] and made[0].components == [], stack


def test_every_stack_file_parses_and_every_default_passes_its_own_parser():
    for path in mock_plan.stack_files():
        assert parsed(path).target
    required_lists = {"robojam:sshKeys"}  # default [] so that its parser gives the sentence for "empty"
    for key in KEYS:
        if key.parse is not None and key.default is not None and key.name not in required_lists:
            key.parse(key.name, default_string(key))


def test_settings_fields_are_unique_per_target():
    from infra.config import TARGETS

    for target in TARGETS:
        fields = [k.field for k in KEYS if target in k.targets]
        assert len(fields) == len(set(fields)), target


# --- every target ------------------------------------------------------------------------------------------


def test_unknown_target():
    assert refuse("dev", {"robojam:target": "lambda"}) == (
        "robojam:target must be one of droplet, gke, gpu-vm, got 'lambda'."
    )


def test_missing_target():
    assert "robojam:target must be one of" in refuse("dev", {"robojam:target": None})


@pytest.mark.parametrize("name", ["My_Stack", "a-very-long-stack-name", "-dev"])
def test_stack_name_unfit_for_cloud_resource_names(tmp_path, name):
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    assert refuse(path, {}) == (
        f"stack name {name!r} names cloud resources, so it must be 1-16 lowercase letters, digits or hyphens."
    )


def test_misspelt_key_names_the_key_it_probably_meant():
    message = refuse("gke", {"robojam:replica": 3})
    assert message == "robojam:replica is not a config key this program reads (did you mean robojam:replicas?)."


def test_key_of_another_target():
    message = refuse("dev", {"robojam:gpuType": "nvidia-tesla-t4"})
    assert message == "robojam:gpuType does not apply to target droplet; remove it from this stack."


def test_digitalocean_token_in_plain_text():
    message = refuse("dev", {"digitalocean:token": "dop_v1_plaintext"})
    assert "digitalocean:token must be set with `pulumi config set --secret`" in message


def test_digitalocean_token_as_secret_is_accepted():
    assert parsed("dev", {"digitalocean:token": SecretValue("dop_v1_secret")}).droplet


def test_malformed_prebuilt_image():
    assert "robojam:image must be an image reference" in refuse("dev", {"robojam:image": "Not An Image"})


@pytest.mark.parametrize("cidr", ["10.0.0.300/32", "10.0.0.1/24", "example.org", "10.0.0.0/33"])
def test_malformed_cidr(cidr):
    assert refuse("dev", {"robojam:sshCidrs": [cidr]}) == (
        f"robojam:sshCidrs entry {cidr!r} is not a valid CIDR such as 203.0.113.7/32."
    )


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_ssh_open_to_the_whole_internet(cidr):
    assert "must not open SSH to the whole internet" in refuse("train", {"robojam:sshCidrs": [cidr]})


def test_cidrs_not_a_list():
    assert refuse("dev", {"robojam:sshCidrs": "10.0.0.0/8"}) == (
        "robojam:sshCidrs must be a list (pulumi config set --path 'robojam:sshCidrs[0]' VALUE), got '10.0.0.0/8'."
    )


def test_not_a_boolean():
    assert refuse("dev", {"robojam:reservedIp": "yes"}) == "robojam:reservedIp must be true or false, got 'yes'."


# --- GCP ---------------------------------------------------------------------------------------------------


def test_missing_gcp_project():
    assert refuse("gke", {"gcp:project": None}).startswith("gcp:project must be set")


def test_malformed_gcp_project():
    assert "gcp:project must be a GCP project id" in refuse("train", {"gcp:project": "My Project"})


def test_malformed_zone():
    assert "gcp:zone must be a GCP zone such as us-central1-a" in refuse("gke", {"gcp:zone": "us-central1"})


def test_malformed_region():
    assert "gcp:region must be a GCP region" in refuse("gke", {"gcp:region": "US Central"})


def test_zone_outside_region():
    message = refuse("train", {"gcp:zone": "europe-west4-a", "gcp:region": "us-central1"})
    assert message == "gcp:zone europe-west4-a is not in gcp:region us-central1."


# --- gpu-vm ------------------------------------------------------------------------------------------------


def test_unknown_gpu_type():
    message = refuse("train", {"robojam:gpuType": "nvidia-tesla-k80"})
    assert message.startswith("robojam:gpuType must be one of nvidia-tesla-t4")
    assert message.endswith("got 'nvidia-tesla-k80'.")


def test_gpu_type_on_the_wrong_machine_family():
    message = refuse("train", {"robojam:gpuType": "nvidia-l4"})
    assert message == "robojam:gpuType nvidia-l4 attaches only to g2-* machine types, not n1-standard-4."


@pytest.mark.parametrize("count", [0, 3, 16])
def test_unsupported_gpu_count(count):
    assert refuse("train", {"robojam:gpuCount": count}) == (f"robojam:gpuCount must be one of 1, 2, 4, 8, got {count}.")


def test_gpu_count_not_a_number():
    assert refuse("train", {"robojam:gpuCount": "one"}) == "robojam:gpuCount must be a whole number, got 'one'."


def test_malformed_machine_type():
    assert "robojam:machineType must be a Compute Engine machine type" in refuse(
        "train", {"robojam:machineType": "N1 Standard"}
    )


@pytest.mark.parametrize("hours", [0, -1, 169])
def test_run_limit_out_of_range(hours):
    assert refuse("train", {"robojam:maxRunHours": hours}).startswith(
        "robojam:maxRunHours must be above 0 and at most 168"
    )


def test_run_limit_not_a_number():
    assert "robojam:maxRunHours must be a number of hours" in refuse("train", {"robojam:maxRunHours": "forever"})


def test_unknown_termination_action():
    assert refuse("train", {"robojam:terminationAction": "SUSPEND"}) == (
        "robojam:terminationAction must be STOP or DELETE, got 'SUSPEND'."
    )


def test_missing_corpus_file():
    assert refuse("train", {"robojam:corpusPath": "/nonexistent/corpus.h5"}) == (
        "robojam:corpusPath /nonexistent/corpus.h5 is not a file."
    )


def test_corpus_path_required():
    assert refuse("train", {"robojam:corpusPath": None}) == "robojam:corpusPath must be set."


def test_malformed_image_family():
    assert "robojam:imageFamily must be an image family name" in refuse(
        "train", {"robojam:imageFamily": "Ubuntu 22.04"}
    )


def test_boot_disk_too_small():
    assert refuse("train", {"robojam:bootDiskGb": 20}) == "robojam:bootDiskGb must be at least 50, got 20."


def test_malformed_run_name():
    assert "robojam:runName must be lowercase letters" in refuse("train", {"robojam:runName": "../escape"})


def test_epochs_below_one():
    assert refuse("train", {"robojam:epochs": 0}) == "robojam:epochs must be at least 1, got 0."


# The cloud's own GPU rules (infra/gpus.py, one table shared with the policy pack).


def test_g2_machine_types_come_with_a_fixed_number_of_l4s():
    overrides = {"robojam:gpuType": "nvidia-l4", "robojam:machineType": "g2-standard-8", "gcp:zone": "europe-west4-a"}
    assert parsed("train", {**overrides, "robojam:gpuCount": 1}).gpu_vm.gpu_count == 1
    assert refuse("train", {**overrides, "robojam:gpuCount": 2}) == (
        "robojam:gpuCount must be 1 for g2-standard-8 (it comes with 1 nvidia-l4), got 2."
    )
    overrides["robojam:machineType"] = "g2-standard-24"
    assert parsed("train", {**overrides, "robojam:gpuCount": 2}).gpu_vm.machine_type == "g2-standard-24"


@pytest.mark.parametrize("gpu", ["nvidia-tesla-t4", "nvidia-tesla-p4", "nvidia-tesla-p100"])
def test_n1_gpus_other_than_v100_never_attach_eight(gpu):
    zone = {"nvidia-tesla-p100": "us-central1-c"}.get(gpu, "us-central1-a")
    assert refuse("train", {"robojam:gpuType": gpu, "robojam:gpuCount": 8, "gcp:zone": zone}) == (
        f"robojam:gpuCount 8 is not offered for {gpu}: N1 machines attach 1, 2 or 4."
    )
    assert parsed("train", {"robojam:gpuType": gpu, "robojam:gpuCount": 4, "gcp:zone": zone}).gpu_vm.gpu_count == 4


def test_a2_ultragpu_needs_the_80gb_a100():
    message = refuse("train", {"robojam:gpuType": "nvidia-tesla-a100", "robojam:machineType": "a2-ultragpu-1g"})
    assert message == (
        "robojam:gpuType nvidia-tesla-a100 attaches only to a2-highgpu-* machine types, not a2-ultragpu-1g; "
        "a2-ultragpu-1g comes with nvidia-a100-80gb."
    )
    ok = {"robojam:gpuType": "nvidia-a100-80gb", "robojam:machineType": "a2-ultragpu-1g"}
    assert parsed("train", ok).gpu_vm.gpu_type == "nvidia-a100-80gb"


def test_gpu_not_offered_in_the_zone_names_the_zones_that_offer_it():
    assert refuse("train", {"robojam:gpuType": "nvidia-tesla-p100"}) == (
        "gcp:zone us-central1-a does not offer nvidia-tesla-p100; in us-central1 it is in us-central1-c, us-central1-f."
    )
    message = refuse("train", {"robojam:gpuType": "nvidia-tesla-v100", "gcp:zone": "europe-west2-a"})
    assert message.startswith("gcp:zone europe-west2-a does not offer nvidia-tesla-v100; it is in us-central1-a")


def test_every_gpu_offer_is_consistent():
    from infra.gpus import GPU_OFFERS

    for offer in GPU_OFFERS:
        assert bool(offer.counts) != bool(offer.fixed), offer.gpu  # a count list or fixed types, not both
        assert all(t.startswith(offer.family + "-") for t in offer.fixed), offer.gpu
        assert offer.zones and all(re.match(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$", z) for z in offer.zones), offer.gpu


def test_region_of_is_the_zone_rule_the_costs_engine_reuses():
    from infra.config import region_of

    assert region_of("europe-west4-b") == "europe-west4"
    with pytest.raises(ConfigError, match="gcp:zone must be a GCP zone"):
        region_of("europe-west4")


# --- droplet -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keys", [None, []])
def test_droplet_needs_an_ssh_key(keys):
    assert refuse("dev", {"robojam:sshKeys": keys}).startswith(
        "robojam:sshKeys must list at least one DigitalOcean SSH key"
    )


def test_malformed_ssh_key_fingerprint():
    assert "is neither an MD5 fingerprint" in refuse("dev", {"robojam:sshKeys": ["ssh-ed25519 AAAA"]})


def test_malformed_droplet_region():
    assert "robojam:region must be a DigitalOcean region slug" in refuse("dev", {"robojam:region": "new-york"})


def test_malformed_droplet_size():
    assert "robojam:size must be a droplet size slug" in refuse("dev", {"robojam:size": "small"})


def test_malformed_domain():
    assert "robojam:domain must be a domain name" in refuse("dev", {"robojam:domain": "http://jam.example.org"})


def test_acme_email_without_domain():
    assert refuse("dev", {"robojam:acmeEmail": "ops@example.org"}) == (
        "robojam:acmeEmail only applies with robojam:domain set."
    )


def test_malformed_acme_email():
    message = refuse("dev", {"robojam:domain": "jam.example.org", "robojam:acmeEmail": "ops"})
    assert message == "robojam:acmeEmail must be an e-mail address, got 'ops'."


def test_malformed_registry_name():
    assert "robojam:registryName must be lowercase" in refuse("dev", {"robojam:registryName": "My_Registry"})


# --- gke ---------------------------------------------------------------------------------------------------


def test_min_nodes_above_max_nodes():
    assert refuse("gke", {"robojam:minNodes": 4, "robojam:maxNodes": 2}) == (
        "robojam:minNodes (4) must not exceed robojam:maxNodes (2)."
    )


@pytest.mark.parametrize("replicas", [0, -2])
def test_replicas_below_one(replicas):
    assert refuse("gke", {"robojam:replicas": replicas}) == f"robojam:replicas must be at least 1, got {replicas}."


def test_replicas_not_a_whole_number():
    assert refuse("gke", {"robojam:replicas": 1.5}) == "robojam:replicas must be a whole number, got '1.5'."


def test_max_replicas_below_replicas():
    assert refuse("gke", {"robojam:replicas": 4, "robojam:maxReplicas": 3}) == (
        "robojam:maxReplicas (3) must be at least robojam:replicas (4)."
    )


@pytest.mark.parametrize("percent", [0, 101])
def test_cpu_target_out_of_range(percent):
    assert refuse("gke", {"robojam:cpuTargetPercent": percent}).startswith("robojam:cpuTargetPercent must be")


def test_malformed_cpu_quantity():
    assert "robojam:cpuRequest must be a CPU quantity" in refuse("gke", {"robojam:cpuRequest": "lots"})


def test_malformed_memory_quantity():
    assert "robojam:memoryLimit must be a memory quantity" in refuse("gke", {"robojam:memoryLimit": "1 GB"})


def test_request_above_limit():
    assert refuse("gke", {"robojam:memoryRequest": "1Gi", "robojam:memoryLimit": "512Mi"}) == (
        "robojam:memoryRequest (1Gi) must not exceed robojam:memoryLimit (512Mi)."
    )
    assert "robojam:cpuRequest (1500m) must not exceed" in refuse("gke", {"robojam:cpuRequest": "1500m"})


def test_malformed_node_machine_type():
    assert "robojam:nodeMachineType must be" in refuse("gke", {"robojam:nodeMachineType": "big"})


# --- how the real `pulumi up` hands config over, and the docs ----------------------------------------------


def test_config_comes_from_the_language_host_environment(monkeypatch):
    """`pulumi up` passes config as JSON in PULUMI_CONFIG and names the secret keys separately."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"robojam:target": "droplet", "digitalocean:token": "t"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["digitalocean:token"]))
    values, secret = read_pulumi_config()
    assert values["robojam:target"] == "droplet"
    assert secret == {"digitalocean:token"}


# --- issue 9: keys and rules added for a real `pulumi up` --------------------------------------------------


def test_droplet_needs_an_ssh_cidr_because_its_rollout_runs_over_ssh():
    assert refuse("dev", {"robojam:sshCidrs": None}) == (
        "robojam:sshCidrs must list the address you run `pulumi up` from: the droplet's rollout runs over SSH."
    )
    assert parsed("train", {"robojam:sshCidrs": None}).gpu_vm.ssh_cidrs == ()  # the training VM may stay closed


def test_default_registry_name_is_left_to_the_account_and_an_existing_one_must_be_named():
    assert parsed("dev").droplet.registry_name == ""  # derived from the account id by the program
    assert refuse("dev", {"robojam:createRegistry": False}) == (
        "robojam:registryName must name your existing registry when robojam:createRegistry is false."
    )
    prebuilt = parsed("dev", {"robojam:image": "registry.digitalocean.com/team/robojam:1.0"})
    assert prebuilt.droplet.registry_name == "team"


def test_reserved_ip_defaults_to_on_with_a_domain():
    assert parsed("dev").droplet.reserved_ip is False
    assert parsed("dev", {"robojam:domain": "jam.example.org"}).droplet.reserved_ip is True
    assert (
        parsed("dev", {"robojam:domain": "jam.example.org", "robojam:reservedIp": False}).droplet.reserved_ip is False
    )


def test_control_plane_cidrs_are_cidrs_and_never_the_whole_internet():
    assert parsed("gke", {"robojam:controlPlaneCidrs": ["203.0.113.7/32"]}).gke.control_plane_cidrs == (
        "203.0.113.7/32",
    )
    assert refuse("gke", {"robojam:controlPlaneCidrs": ["0.0.0.0/0"]}) == (
        "robojam:controlPlaneCidrs must not open the control plane to the whole internet (0.0.0.0/0); "
        "list your own CIDRs."
    )


def test_interactive_is_a_boolean_of_the_gpu_vm():
    assert parsed("train", {"robojam:interactive": True}).gpu_vm.interactive is True
    assert refuse("train", {"robojam:interactive": "sometimes"}) == (
        "robojam:interactive must be true or false, got 'sometimes'."
    )
    assert refuse("gke", {"robojam:interactive": True}).endswith(
        "does not apply to target gke; remove it from this stack."
    )
