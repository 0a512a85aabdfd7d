"""Every Pulumi.<stack>.yaml, run under Pulumi's mocks: the resources and the properties that matter."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from infra.mock_plan import (
    MOCK_ACCESS_TOKEN,
    SECRET_PLACEHOLDER,
    Plan,
    PlannedResource,
    plan_stack,
    stack_files,
    stack_name,
)

STACKS = [stack_name(p) for p in stack_files()]
INSTANCE = "gcp:compute/instance:Instance"
DROPLET = "digitalocean:index/droplet:Droplet"
DO_FIREWALL = "digitalocean:index/firewall:Firewall"
IMAGE = "docker-build:index:Image"
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


@pytest.fixture(scope="module")
def plans() -> dict[str, Plan]:
    return {name: plan_stack(name) for name in STACKS}


def by_target(plans: dict[str, Plan], target: str) -> list[Plan]:
    found = [p for p in plans.values() if p.config["robojam:target"] == target]
    assert found, f"no stack file selects target {target}"
    return found


def test_the_repo_has_one_stack_per_target_and_dev_is_the_droplet(plans):
    assert {p.config["robojam:target"] for p in plans.values()} == {"droplet", "gke", "gpu-vm"}
    assert plans["dev"].config["robojam:target"] == "droplet"


def test_pulumi_project_file_runs_the_infra_package_with_a_virtualenv():
    from robojam_format.layout import REPO_ROOT

    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "robojam"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"]
    assert project["main"].rstrip("/") == "infra"
    assert project["description"]
    assert (REPO_ROOT / "infra" / "__main__.py").is_file()


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_creates_resources_inside_its_components(plans, name):
    plan = plans[name]
    assert plan.resources, name
    assert plan.components, name
    assert all(c.type.startswith("robojam:infra:") for c in plan.components)
    assert plan.outputs["target"] == plan.config["robojam:target"]
    assert all(value is not None for value in plan.outputs.values()), plan.outputs


# --- gpu-vm ------------------------------------------------------------------------------------------------


def test_gpu_vm_has_the_gpu_terminate_policy_and_a_hard_run_limit(plans):
    for plan in by_target(plans, "gpu-vm"):
        vm = plan.one(INSTANCE).inputs
        cfg = plan.config
        assert vm["machineType"] == cfg.get("robojam:machineType", "n1-standard-4")
        assert vm["guestAccelerators"] == [
            {"type": cfg.get("robojam:gpuType", "nvidia-tesla-t4"), "count": cfg.get("robojam:gpuCount", 1)}
        ]
        scheduling = vm["scheduling"]
        assert scheduling["onHostMaintenance"] == "TERMINATE"
        assert scheduling["maxRunDuration"]["seconds"] == int(float(cfg.get("robojam:maxRunHours", 6)) * 3600)
        assert scheduling["instanceTerminationAction"] in ("STOP", "DELETE")
        assert vm["metadata"]["install-nvidia-driver"] == "True"
        image = vm["bootDisk"]["initializeParams"]["image"]
        assert image.startswith("projects/deeplearning-platform-release/global/images/family/")


def test_gpu_vm_defaults_are_n1_standard_4_with_one_t4_on_standard_provisioning():
    keys = [
        "robojam:machineType",
        "robojam:gpuType",
        "robojam:gpuCount",
        "robojam:spot",
        "robojam:maxRunHours",
        "robojam:terminationAction",
    ]
    plan = plan_stack("train", dict.fromkeys(keys))
    vm = plan.one(INSTANCE).inputs
    assert vm["machineType"] == "n1-standard-4"
    assert vm["guestAccelerators"] == [{"type": "nvidia-tesla-t4", "count": 1}]
    assert vm["scheduling"]["provisioningModel"] == "STANDARD"
    assert vm["scheduling"]["instanceTerminationAction"] == "STOP"


def test_gpu_vm_spot_delete_and_other_gpu_are_configurable():
    plan = plan_stack(
        "train",
        {
            "robojam:spot": True,
            "robojam:terminationAction": "DELETE",
            "robojam:gpuType": "nvidia-l4",
            "robojam:machineType": "g2-standard-24",  # comes with exactly two L4s
            "robojam:gpuCount": 2,
            "robojam:maxRunHours": 1.5,
            "gcp:zone": "europe-west4-a",
        },
    )
    vm = plan.one(INSTANCE).inputs
    assert vm["scheduling"]["provisioningModel"] == "SPOT"
    assert vm["scheduling"]["preemptible"] is True
    assert vm["scheduling"]["automaticRestart"] is False
    assert vm["scheduling"]["instanceTerminationAction"] == "DELETE"
    assert vm["scheduling"]["maxRunDuration"]["seconds"] == 5400
    assert vm["guestAccelerators"] == [{"type": "nvidia-l4", "count": 2}]
    assert vm["zone"] == "europe-west4-a"
    assert plan.one("gcp:storage/bucket:Bucket").inputs["location"] == "EUROPE-WEST4"


def test_gpu_vm_service_account_reaches_only_its_own_bucket(plans):
    for plan in by_target(plans, "gpu-vm"):
        (sa,) = [a for a in plan.of_type("gcp:serviceaccount/account:Account") if a.name == "train-sa"]
        vm = plan.one(INSTANCE).inputs
        assert vm["serviceAccount"]["email"].startswith(sa.inputs["accountId"] + "@")
        member = f"serviceAccount:{vm['serviceAccount']['email']}"
        every = plan.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
        bindings = [b for b in every if b.inputs["member"] == member]
        assert [b.inputs["bucket"] for b in bindings] == [plan.one("gcp:storage/bucket:Bucket").inputs["name"]]
        assert [b.inputs["bucket"] for b in every] == [bindings[0].inputs["bucket"]] * len(every)
        assert not [r for r in plan.resources if "IAM" in r.type and r.inputs.get("member") == member][1:]
        # no project-wide grant of any kind (a custom role is a definition: it is granted on one instance)
        assert not [r for r in plan.resources if r.type.startswith("gcp:projects/iAM") and r.type != CUSTOM_ROLE]


def test_gpu_vm_bucket_gets_the_corpus_and_the_project_source(plans):
    for plan in by_target(plans, "gpu-vm"):
        bucket = plan.one("gcp:storage/bucket:Bucket").inputs
        assert bucket["uniformBucketLevelAccess"] is True
        assert bucket["publicAccessPrevention"] == "enforced"
        objects = {o.inputs["name"]: o.inputs for o in plan.of_type("gcp:storage/bucketObject:BucketObject")}
        corpus = objects[f"corpus/{plan.config['robojam:corpusPath'].rsplit('/', 1)[-1]}"]
        assert corpus["bucket"] == bucket["name"]
        assert "source/robojam-src.zip" in objects


def test_gpu_vm_source_archive_holds_what_pip_install_needs_and_no_weights():
    from infra.components.gpu_vm import source_archive

    assets = source_archive().assets
    assert {"pyproject.toml", "README.md", "model/__init__.py", "model/train.py", "model/export.py"} <= set(assets)
    assert not [name for name in assets if name.endswith(".npz") or "__pycache__" in name]


def test_gpu_vm_startup_script_trains_exports_uploads_and_powers_off(plans):
    for plan in by_target(plans, "gpu-vm"):
        script = plan.one(INSTANCE).inputs["metadataStartupScript"]
        run = plan.config.get("robojam:runName", "gpu")
        bucket = plan.one("gcp:storage/bucket:Bucket").inputs["name"]
        assert script.startswith("#!/usr/bin/env bash\n")
        assert f"BUCKET={bucket}\n" in script and f"RUN_NAME={run}\n" in script
        assert "pip\" install --quiet '.[train-gpu]'" in script
        assert '-m model.train --data "$corpus_file" --out "runs/$RUN_NAME"' in script
        assert '-m model.export "runs/$RUN_NAME/best.keras" --out "model/weights/$RUN_NAME.npz"' in script
        assert "gs://$BUCKET/weights/$RUN_NAME.npz" in script
        assert "trap finish EXIT" in script and "shutdown -h now" in script


def test_gpu_vm_exports_the_ssh_command_and_says_jupyter_needs_interactive_mode(plans):
    for plan in by_target(plans, "gpu-vm"):
        out = plan.outputs
        vm = plan.one(INSTANCE).inputs
        assert out["ssh_command"].startswith(f"gcloud compute ssh {vm['name']} --zone {vm['zone']}")
        assert "robojam:interactive true" in out["jupyter_tunnel"]
        assert out["weights_uri"].startswith("gs://") and out["weights_uri"].endswith(".npz")
        assert out["next_steps"] and out["progress_command"]
        assert "GPU quota is 0" in out["next_steps"] and "GPUS_ALL_REGIONS" in out["next_steps"]


def test_interactive_mode_serves_jupyterlab_on_localhost_and_keeps_the_vm_up_within_its_run_limit():
    """Issue 9 item 8: the tunnel's port is the port JupyterLab listens on (the DLVM's own is 8080)."""
    plan = plan_stack("train", {"robojam:interactive": True})
    vm = plan.one(INSTANCE).inputs
    script = vm["metadataStartupScript"]
    assert "INTERACTIVE=true\n" in script and "JUPYTER_PORT=8888\n" in script
    assert '"$WORKDIR/venv/bin/jupyter" lab --ip 127.0.0.1 --port "$JUPYTER_PORT"' in script
    assert "'jupyterlab>=4,<5'" in script
    assert 'if [ "$INTERACTIVE" = "true" ]; then\n    echo "robojam: interactive mode' in script  # no shutdown
    assert vm["scheduling"]["maxRunDuration"]["seconds"] == 6 * 3600
    assert plan.outputs["jupyter_tunnel"] == plan.outputs["ssh_command"] + " -- -L 8888:127.0.0.1:8888"
    assert "stays up for JupyterLab" in plan.outputs["next_steps"]
    assert "INTERACTIVE=false\n" in plan_stack("train").one(INSTANCE).inputs["metadataStartupScript"]


def test_gpu_vm_waits_for_its_bucket_access_corpus_and_source():
    """Issue 9 item 7: the startup script's first copy needs all three; the exit trap would power off."""
    plan = plan_stack("train")
    assert {"train-bucket-access", "train-corpus", "train-source"} <= set(plan.one(INSTANCE).dependencies)


def test_a_changed_corpus_is_a_new_run_visibly(tmp_path):
    """Issue 9 item 7: the inputs' digest is in the startup script, which replaces the VM when it changes."""
    from robojam_format.layout import REPO_ROOT

    original = (REPO_ROOT / plan_stack("train").config["robojam:corpusPath"]).read_bytes()
    changed = tmp_path / "TinyPerformanceCorpus.h5"
    changed.write_bytes(original + b"\0")
    before = plan_stack("train").one(INSTANCE)
    after = plan_stack("train", {"robojam:corpusPath": str(changed)}).one(INSTANCE)
    assert before.replace_on_changes == ("metadataStartupScript",)
    assert before.inputs["metadataStartupScript"] != after.inputs["metadataStartupScript"]
    assert before.inputs["labels"]["inputs"] != after.inputs["labels"]["inputs"]
    again = plan_stack("train").one(INSTANCE)
    assert again.inputs["metadataStartupScript"] == before.inputs["metadataStartupScript"]  # same inputs: no run


@pytest.mark.parametrize("stack", ["train", "gke"])
def test_gcp_apis_are_enabled_by_the_stack_and_every_gcp_resource_waits_for_them(stack):
    """Issue 9 item 2: a fresh project has these APIs disabled (403 SERVICE_DISABLED)."""
    from infra.tables.gcp_apis import api_for

    plan = plan_stack(stack)
    services = {s.inputs["service"]: s for s in plan.of_type("gcp:projects/service:Service")}
    assert all(s.inputs["disableOnDestroy"] is False for s in services.values())
    for r in plan.resources:
        api = api_for(r.type)
        if api is not None:
            assert api in services, (r.type, api)
            assert services[api].name in r.dependencies, (r.name, api)


def test_gpu_vm_without_ssh_cidrs_has_no_firewall_rule_and_says_ssh_is_closed():
    plan = plan_stack("train", {"robojam:sshCidrs": None})
    assert plan.of_type("gcp:compute/firewall:Firewall") == []
    assert "closed" in plan.outputs["ssh_command"] and "closed" in plan.outputs["jupyter_tunnel"]


def test_gpu_vm_ssh_rule_allows_exactly_the_configured_cidrs():
    plan = plan_stack("train", {"robojam:sshCidrs": ["198.51.100.0/24", "2001:db8::/64"]})
    rule = plan.one("gcp:compute/firewall:Firewall").inputs
    assert rule["sourceRanges"] == ["198.51.100.0/24", "2001:db8::/64"]
    assert rule["allows"] == [{"protocol": "tcp", "ports": ["22"]}]
    assert rule["targetTags"] == plan.one(INSTANCE).inputs["tags"]


# --- droplet -----------------------------------------------------------------------------------------------


def test_droplet_size_region_keys_and_monitoring(plans):
    for plan in by_target(plans, "droplet"):
        droplet = plan.one(DROPLET).inputs
        assert droplet["size"] == plan.config.get("robojam:size", "s-1vcpu-1gb")
        assert droplet["region"] == plan.config.get("robojam:region", "nyc3")
        deploy_key = plan.one("digitalocean:index/sshKey:SshKey").inputs
        assert deploy_key["publicKey"].startswith("ssh-ed25519 ")
        assert droplet["sshKeys"][:-1] == plan.config["robojam:sshKeys"] and len(droplet["sshKeys"]) == 2
        assert droplet["monitoring"] is True
        assert droplet["userData"].startswith("#cloud-config\n")


def test_droplet_defaults_to_the_cheapest_size():
    plan = plan_stack("dev", {"robojam:size": None, "robojam:region": None})
    assert plan.one(DROPLET).inputs["size"] == "s-1vcpu-1gb"


def test_droplet_firewall_is_web_from_anywhere_and_ssh_from_the_configured_cidrs(plans):
    for plan in by_target(plans, "droplet"):
        firewall = plan.one(DO_FIREWALL).inputs
        rules = {rule["portRange"]: rule["sourceAddresses"] for rule in firewall["inboundRules"]}
        assert rules == {
            "80": ["0.0.0.0/0", "::/0"],
            "443": ["0.0.0.0/0", "::/0"],
            "22": plan.config["robojam:sshCidrs"],
        }
        assert len(firewall["dropletIds"]) == 1 and isinstance(firewall["dropletIds"][0], int)


def cloud_config(plan: Plan) -> dict:
    return yaml.safe_load(plan.one(DROPLET).inputs["userData"])


def written(config: dict, path: str) -> str:
    return next(f["content"] for f in config["write_files"] if f["path"] == path)


def rollout(plan: Plan) -> PlannedResource:
    return plan.one("command:remote:Command")


def test_a_new_image_changes_no_input_of_the_droplet_only_the_rollout_step():
    """Issue 9 item 6: the image is deployed over SSH, so a new image never replaces the droplet."""
    first = plan_stack("dev", {"robojam:image": "ghcr.io/example/robojam:1.0"})
    second = plan_stack("dev", {"robojam:image": "ghcr.io/example/robojam:2.0"})
    for kind in (DROPLET, DO_FIREWALL, "digitalocean:index/sshKey:SshKey"):
        assert first.one(kind).inputs == second.one(kind).inputs, kind
    assert "robojam:1.0" not in first.one(DROPLET).inputs["userData"]
    assert rollout(first).inputs["triggers"][0] == "ghcr.io/example/robojam:1.0"
    assert rollout(second).inputs["triggers"][0] == "ghcr.io/example/robojam:2.0"
    assert rollout(first).inputs["stdin"] != rollout(second).inputs["stdin"]


def test_built_image_ref_flows_into_the_rollout_step(plans):
    for plan in by_target(plans, "droplet"):
        ref = plan.outputs["image"]
        assert "@sha256:" in ref
        image = plan.one(IMAGE).inputs
        assert image["push"] is True
        assert image["dockerfile"]["location"].endswith("/Dockerfile")
        assert ref.startswith(image["tags"][0].rsplit(":", 1)[0] + "@")
        step = rollout(plan).inputs
        assert step["triggers"][0] == ref
        assert f"IMAGE={ref} " in step["stdin"] and step["create"] == "bash -s"
        assert "image-build" in rollout(plan).dependencies and "web-droplet" in rollout(plan).dependencies


def test_the_rollout_step_connects_as_root_with_the_generated_key_as_a_secret(plans):
    for plan in by_target(plans, "droplet"):
        step = rollout(plan)
        connection = step.inputs["connection"]
        assert connection["user"] == "root" and connection["host"] == "203.0.113.10"
        assert connection["privateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        assert "connection" in step.secret_paths
        assert plan.one("tls:index/privateKey:PrivateKey").inputs["algorithm"] == "ED25519"


def test_the_rollout_step_installs_the_shipped_rollout_script_and_runs_it_blue_green(plans):
    from infra.render import template_text

    script = template_text("robojam-rollout.sh")
    for plan in by_target(plans, "droplet"):
        stdin = rollout(plan).inputs["stdin"]
        assert script in stdin  # byte for byte the script staging runs against podman
        assert "PORTS='5001 5002'" in stdin and "STOP_TIMEOUT=40" in stdin
        assert "--user 10001:10001" in stdin and "--cap-drop ALL" in stdin and "--read-only" in stdin
        assert 'rm -rf "$auth"' in stdin  # the registry login lives for this run only


def test_droplet_user_data_installs_docker_and_caddy_and_holds_no_credential(plans):
    for plan in by_target(plans, "droplet"):
        config = cloud_config(plan)
        assert {"docker.io", "caddy", "curl"} <= set(config["packages"])
        assert "/etc/robojam/docker/config.json" not in plan.one(DROPLET).inputs["userData"]
        assert "userData" not in plan.one(DROPLET).secret_paths
        assert ["systemctl", "restart", "caddy.service"] in config["runcmd"]
        block = written(config, "/etc/systemd/system/robojam-metadata-block.service")
        assert "DOCKER-USER -d 169.254.169.254/32 -j REJECT" in block


def installed_caddyfile(plan: Plan) -> str:
    """The Caddyfile the rollout step installs (issue 19: not in user-data, so a change never replaces the droplet)."""
    from infra.components.droplet import installed_caddyfile as in_script

    assert "/etc/caddy/Caddyfile" not in plan.one(DROPLET).inputs["userData"]
    return in_script(rollout(plan).inputs["stdin"])


def test_droplet_user_data_rotates_docker_logs_and_adds_swap(plans):
    """Issue 19 item 5: a month unattended: logs bounded per container, swap for a rollout's peak."""
    for plan in by_target(plans, "droplet"):
        config = cloud_config(plan)
        daemon = json.loads(written(config, "/etc/docker/daemon.json"))
        assert daemon == {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}
        assert config["swap"] == {"filename": "/swapfile", "size": 512 * 1024**2}
        assert "--restart unless-stopped" in rollout(plan).inputs["stdin"]  # the serving slot comes back at boot


def test_droplet_without_a_domain_serves_plain_http_on_80_through_caddy(plans):
    for plan in by_target(plans, "droplet"):
        caddyfile = installed_caddyfile(plan)
        assert "\n:80 {" in caddyfile
        assert "reverse_proxy 127.0.0.1:5001 127.0.0.1:5002 {" in caddyfile
        assert "export PROXY_CONFIG=/etc/caddy/Caddyfile\n" in rollout(plan).inputs["stdin"]  # reordered at a switch
        assert "respond @metrics" in caddyfile and "@metrics path /metrics" in caddyfile
        assert "buffer_requests" in caddyfile  # Ubuntu 24.04's caddy 2.6 spelling
        assert plan.outputs["url"] == f"http://{plan.outputs['ip']}"
        assert "127.0.0.1:5001" in plan.outputs["metrics_tunnel"]


def test_droplet_pull_credentials_are_read_only_and_only_in_the_secret_rollout_step(plans):
    for plan in by_target(plans, "droplet"):
        creds = plan.of_type("digitalocean:index/containerRegistryDockerCredentials:ContainerRegistryDockerCredentials")
        assert [c.inputs["write"] for c in creds if c.name.endswith("-pull")] == [False]
        step = rollout(plan)
        assert "stdin" in step.secret_paths
        encoded = step.inputs["stdin"].split("printf '%s' ", 1)[1].split(" ", 1)[0]
        assert json.loads(base64.b64decode(encoded))["auths"]


def test_droplet_with_a_domain_serves_https_through_caddy_on_a_reserved_ip():
    plan = plan_stack("dev", {"robojam:domain": "jam.example.org", "robojam:acmeEmail": "ops@example.org"})
    caddyfile = installed_caddyfile(plan)
    assert "\njam.example.org {" in caddyfile and "reverse_proxy 127.0.0.1:5001 127.0.0.1:5002" in caddyfile
    assert "email ops@example.org" in caddyfile
    assert plan.outputs["url"] == "https://jam.example.org"
    # a domain's A record must survive a replaced droplet: a reserved IP by default
    assert plan.one("digitalocean:index/reservedIp:ReservedIp")
    assert plan.outputs["ip"] == "203.0.113.20"
    without = plan_stack("dev", {"robojam:domain": "jam.example.org", "robojam:reservedIp": False})
    assert without.of_type("digitalocean:index/reservedIp:ReservedIp") == []


def test_droplet_reserved_ip_is_optional_and_becomes_the_address():
    assert plan_stack("dev").of_type("digitalocean:index/reservedIp:ReservedIp") == []
    plan = plan_stack("dev", {"robojam:reservedIp": True})
    reserved = plan.one("digitalocean:index/reservedIp:ReservedIp")
    assert reserved.inputs["region"] == plan.one(DROPLET).inputs["region"]
    assert plan.one("digitalocean:index/reservedIpAssignment:ReservedIpAssignment")
    assert plan.outputs["ip"] == "203.0.113.20" and plan.outputs["url"] == "http://203.0.113.20"


def test_prebuilt_public_image_skips_the_build_and_the_registry():
    plan = plan_stack("dev", {"robojam:image": "ghcr.io/example/robojam:1.0"})
    assert plan.of_type(IMAGE) == []
    assert plan.of_type("digitalocean:index/containerRegistry:ContainerRegistry") == []
    assert "IMAGE=ghcr.io/example/robojam:1.0 " in rollout(plan).inputs["stdin"]
    assert plan.outputs["image"] == "ghcr.io/example/robojam:1.0"


def test_default_registry_name_is_unique_per_account():
    """Issue 9 item 3: DOCR names are global across DigitalOcean; `robojam` would collide (409)."""
    from infra.mock_plan import MOCK_ACCOUNT_UUID

    plan = plan_stack("dev")
    registry = plan.one("digitalocean:index/containerRegistry:ContainerRegistry").inputs["name"]
    assert registry == "robojam-" + MOCK_ACCOUNT_UUID.replace("-", "")[:12]
    assert plan.one(IMAGE).inputs["tags"] == [f"registry.digitalocean.com/{registry}/robojam:latest"]


def test_existing_registry_is_named_not_created():
    plan = plan_stack("dev", {"robojam:createRegistry": False, "robojam:registryName": "team-registry"})
    assert plan.of_type("digitalocean:index/containerRegistry:ContainerRegistry") == []
    assert plan.one(IMAGE).inputs["tags"] == ["registry.digitalocean.com/team-registry/robojam:latest"]


# --- gke ---------------------------------------------------------------------------------------------------


def test_gke_cluster_is_zonal_with_default_pool_removed_shielded_and_workload_identity(plans):
    for plan in by_target(plans, "gke"):
        cluster = plan.one("gcp:container/cluster:Cluster").inputs
        assert cluster["location"] == plan.config.get("gcp:zone", "us-central1-a")
        assert cluster["removeDefaultNodePool"] is True
        assert cluster["enableShieldedNodes"] is True
        assert cluster["workloadIdentityConfig"]["workloadPool"] == f"{plan.config['gcp:project']}.svc.id.goog"


def test_gke_node_pool_autoscales_between_the_configured_bounds(plans):
    for plan in by_target(plans, "gke"):
        pool = plan.one("gcp:container/nodePool:NodePool").inputs
        assert pool["autoscaling"] == {
            "minNodeCount": plan.config["robojam:minNodes"],
            "maxNodeCount": plan.config["robojam:maxNodes"],
        }
        node = pool["nodeConfig"]
        assert node["machineType"] == plan.config["robojam:nodeMachineType"]
        assert node["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
        assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    pool = plan_stack("gke", {"robojam:minNodes": 2, "robojam:maxNodes": 5}).one("gcp:container/nodePool:NodePool")
    assert pool.inputs["autoscaling"] == {"minNodeCount": 2, "maxNodeCount": 5}


def test_gke_kubernetes_provider_uses_a_kubeconfig_with_gke_auth_plugin_on_adc(plans):
    for plan in by_target(plans, "gke"):
        provider = plan.one("pulumi:providers:kubernetes").inputs
        kubeconfig = yaml.safe_load(provider["kubeconfig"])
        user = kubeconfig["users"][0]["user"]
        assert user["exec"]["command"] == "gke-gcloud-auth-plugin"
        # issue 9 item 4: the same identity as the gcp provider, and no gcloud login needed
        assert user["exec"]["args"] == ["--use_application_default_credentials"]
        assert "token" not in user and "client-key-data" not in user
        assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://198.51.100.1"


def test_gke_control_plane_is_open_by_choice_or_limited_to_the_configured_cidrs():
    """Issue 19: empty is sent explicitly (every IPv4 address), so clearing the list really opens it again; an
    absent block is no diff upstream (Optional+Computed) and would keep the old allowlist."""
    opened = plan_stack("gke").one("gcp:container/cluster:Cluster").inputs["masterAuthorizedNetworksConfig"]
    assert [block["cidrBlock"] for block in opened["cidrBlocks"]] == ["0.0.0.0/0"]
    cleared = plan_stack("gke", {"robojam:controlPlaneCidrs": []}).one("gcp:container/cluster:Cluster")
    assert cleared.inputs["masterAuthorizedNetworksConfig"] == opened
    plan = plan_stack("gke", {"robojam:controlPlaneCidrs": ["198.51.100.0/24", "203.0.113.7/32"]})
    config = plan.one("gcp:container/cluster:Cluster").inputs["masterAuthorizedNetworksConfig"]
    assert [block["cidrBlock"] for block in config["cidrBlocks"]] == ["198.51.100.0/24", "203.0.113.7/32"]


def pod(plan: Plan) -> dict:
    return plan.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]


def container(plan: Plan, name: str = "robojam") -> dict:
    return next(c for c in pod(plan)["containers"] if c["name"] == name)


def test_gke_deployment_leaves_replicas_to_the_hpa(plans):
    """Issue 9 item 1: with server-side apply a Deployment that sets replicas conflicts once the HPA scaled."""
    for plan in by_target(plans, "gke"):
        assert "replicas" not in plan.one(DEPLOYMENT).inputs["spec"]
        hpa = plan.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs["spec"]
        assert hpa["minReplicas"] == plan.config["robojam:replicas"]


def test_gke_deployment_probes_resources_and_security_context(plans):
    for plan in by_target(plans, "gke"):
        c = container(plan)
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "app"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "app"}
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert c["ports"] == [{"name": "app", "containerPort": 5000, "protocol": "TCP"}]
        assert {"name": "ROBOJAM_BIND", "value": "0.0.0.0:5000"} in c["env"]
        assert set(c["resources"]["requests"]) == {"cpu", "memory"} == set(c["resources"]["limits"])
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert sc["readOnlyRootFilesystem"] is True
        tmp = next(v for v in pod(plan)["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]


def test_gke_liveness_tolerates_a_busy_minute_and_shutdown_outlasts_gunicorns_graceful_timeout(plans):
    """Issue 11: a probe queued behind inference must not restart the pod; a rollout must not drop requests."""
    for plan in by_target(plans, "gke"):
        c = container(plan)
        live = c["livenessProbe"]
        assert live["periodSeconds"] * live["failureThreshold"] >= 60 and live["timeoutSeconds"] >= 5
        graceful = int(next(e["value"] for e in c["env"] if e["name"] == "ROBOJAM_GRACEFUL_TIMEOUT"))
        pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
        assert c["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep" and pre_stop >= 5
        assert pod(plan)["terminationGracePeriodSeconds"] > pre_stop + graceful
        assert container(plan, "proxy")["lifecycle"] == c["lifecycle"]


def test_gke_service_reaches_the_caddy_sidecar_never_gunicorn(plans):
    """Issue 11 (slow clients) and issue 9 item 9 (/metrics): the LoadBalancer's target is the proxy port."""
    from infra.components.proxy import PROXY_IMAGE

    for plan in by_target(plans, "gke"):
        proxy = container(plan, "proxy")
        assert proxy["image"] == PROXY_IMAGE
        assert proxy["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        service = plan.one("kubernetes:core/v1:Service").inputs["spec"]
        assert [p["targetPort"] for p in service["ports"]] == ["http"]
        sc = proxy["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
        config = plan.one("kubernetes:core/v1:ConfigMap").inputs["data"]["Caddyfile"]
        assert "\n:8080 {" in config and "reverse_proxy 127.0.0.1:5000 {" in config
        assert "request_buffers 1MB" in config and "respond @metrics" in config
        mounted = {m["name"]: m for m in proxy["volumeMounts"]}
        assert mounted["proxy-config"] == {"name": "proxy-config", "mountPath": "/etc/caddy", "readOnly": True}
        annotations = plan.one(DEPLOYMENT).inputs["spec"]["template"]["metadata"]["annotations"]
        assert len(annotations["robojam/proxy-config"]) == 16


def test_built_image_ref_flows_into_the_deployment(plans):
    for plan in by_target(plans, "gke"):
        image = plan.one(IMAGE).inputs
        assert image["push"] is True
        assert image["tags"][0].startswith(f"{plan.config.get('gcp:zone', 'us-central1-a')[:-2]}-docker.pkg.dev/")
        assert container(plan)["image"] == plan.outputs["image"]
        assert "@sha256:" in plan.outputs["image"]
        assert plan.one("gcp:artifactregistry/repository:Repository").inputs["format"] == "DOCKER"


def test_gke_service_hpa_and_pdb(plans):
    for plan in by_target(plans, "gke"):
        service = plan.one("kubernetes:core/v1:Service").inputs["spec"]
        assert service["type"] == "LoadBalancer"
        assert service["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
        hpa = plan.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs["spec"]
        assert hpa["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["minReplicas"] == plan.config["robojam:replicas"]
        assert hpa["maxReplicas"] == plan.config["robojam:maxReplicas"]
        assert hpa["metrics"][0]["resource"]["name"] == "cpu"
        pdb = plan.one("kubernetes:policy/v1:PodDisruptionBudget").inputs["spec"]
        assert pdb["selector"]["matchLabels"] == service["selector"]
        assert plan.outputs["url"] == "http://198.51.100.80"


def test_gke_single_replica_pdb_does_not_block_node_drains():
    plan = plan_stack("gke", {"robojam:replicas": 1})
    pdb = plan.one("kubernetes:policy/v1:PodDisruptionBudget").inputs["spec"]
    assert pdb.get("maxUnavailable") == 1 and "minAvailable" not in pdb


def test_gke_nodes_pull_only_from_the_stack_repository(plans):
    for plan in by_target(plans, "gke"):
        grant = plan.one("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember").inputs
        assert grant["role"] == "roles/artifactregistry.reader"
        assert grant["repository"] == plan.one("gcp:artifactregistry/repository:Repository").inputs["repositoryId"]
        roles = {r.inputs["role"] for r in plan.of_type("gcp:projects/iAMMember:IAMMember")}
        assert not [role for role in roles if "admin" in role.lower() or role in ("roles/editor", "roles/owner")]


def test_gcp_image_push_uses_a_secret_access_token(plans):
    for plan in by_target(plans, "gke"):
        image = plan.one(IMAGE)
        assert image.inputs["registries"][0]["password"] == MOCK_ACCESS_TOKEN
        assert "registries" in image.secret_paths


def test_secure_config_values_never_show_in_the_plan_config():
    from infra.mock_plan import SecretValue

    plan = plan_stack("dev", {"digitalocean:token": SecretValue("dop_v1_not_a_real_token")})
    assert plan.config["digitalocean:token"] == SECRET_PLACEHOLDER


def test_the_pinned_uid_and_port_are_the_images_own():
    """Deployments pin the Dockerfile's USER and port: if the Dockerfile changes them, so must infra."""
    from infra.tables.image_contract import CONTAINER_PORT, SERVICE_UID
    from robojam_format.layout import REPO_ROOT

    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and users[-1] == str(SERVICE_UID)
    assert f"ROBOJAM_BIND=0.0.0.0:{CONTAINER_PORT}" in dockerfile


def test_the_gke_cluster_and_workload_keep_the_urns_of_the_former_single_component(monkeypatch):
    """Split in two components, the GKE resources alias their former parent: an existing stack updates in place."""
    from infra import mock_plan
    from infra.compat import pulumi_sdk

    seen = {}

    class Spy(mock_plan.RecordingMocks):
        def new_resource(self, args):
            request = pulumi_sdk.current_registration()
            seen[args.name, args.typ] = (request.parent, [a.spec for a in request.aliases])
            return super().new_resource(args)

    monkeypatch.setattr(mock_plan, "RecordingMocks", Spy)
    plan_stack("gke")
    stack = "urn:pulumi:gke::robojam::pulumi:pulumi:Stack"
    former = f"{stack}$robojam:infra:GkeService::gke"
    parent, aliases = seen["gke", "robojam:infra:GkeCluster"]
    assert parent == f"{stack}::robojam-gke"
    assert [(a.type, a.parentUrn, a.noParent) for a in aliases] == [("robojam:infra:GkeService", "", False)]
    cluster = [name for (name, _), (parent, _) in seen.items() if parent == f"{stack}$robojam:infra:GkeCluster::gke"]
    assert len(cluster) == 11  # its children inherit the component's alias (the engine derives theirs from it)
    workload = [a for (_, _), (parent, a) in seen.items() if parent == f"{stack}$robojam:infra:GkeWorkload::gke"]
    assert len(workload) == 6 and all(any(a.parentUrn == former for a in aliases) for aliases in workload)
