"""Every Pulumi.<stack>.yaml, run under Pulumi's mocks: the resources and the properties that matter."""

from __future__ import annotations

import json

import pytest
import yaml

from infra.mock_plan import MOCK_ACCESS_TOKEN, SECRET_PLACEHOLDER, Plan, plan_stack, stack_files, stack_name

STACKS = [stack_name(p) for p in stack_files()]
INSTANCE = "gcp:compute/instance:Instance"
DROPLET = "digitalocean:index/droplet:Droplet"
DO_FIREWALL = "digitalocean:index/firewall:Firewall"
IMAGE = "docker-build:index:Image"
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
        sa = plan.one("gcp:serviceaccount/account:Account")
        vm = plan.one(INSTANCE).inputs
        assert vm["serviceAccount"]["email"].startswith(sa.inputs["accountId"] + "@")
        bindings = plan.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
        assert [b.inputs["bucket"] for b in bindings] == [plan.one("gcp:storage/bucket:Bucket").inputs["name"]]
        assert bindings[0].inputs["member"] == f"serviceAccount:{vm['serviceAccount']['email']}"
        # no project-wide grant of any kind
        assert not [r for r in plan.resources if r.type.startswith("gcp:projects/")]


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


def test_gpu_vm_exports_the_ssh_command_and_the_jupyter_tunnel(plans):
    for plan in by_target(plans, "gpu-vm"):
        out = plan.outputs
        vm = plan.one(INSTANCE).inputs
        assert out["ssh_command"].startswith(f"gcloud compute ssh {vm['name']} --zone {vm['zone']}")
        assert out["jupyter_tunnel"] == out["ssh_command"] + " -- -L 8888:localhost:8888"
        assert out["weights_uri"].startswith("gs://") and out["weights_uri"].endswith(".npz")
        assert out["next_steps"] and out["progress_command"]


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
        assert droplet["sshKeys"] == plan.config["robojam:sshKeys"]
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


def test_droplet_without_ssh_cidrs_has_no_ssh_rule():
    plan = plan_stack("dev", {"robojam:sshCidrs": None})
    ports = [rule["portRange"] for rule in plan.one(DO_FIREWALL).inputs["inboundRules"]]
    assert ports == ["80", "443"]
    assert "closed" in plan.outputs["ssh_command"]


def cloud_config(plan: Plan) -> dict:
    return yaml.safe_load(plan.one(DROPLET).inputs["userData"])


def unit_file(config: dict) -> str:
    return next(f["content"] for f in config["write_files"] if f["path"] == "/etc/systemd/system/robojam.service")


def test_built_image_ref_flows_into_the_droplet_user_data(plans):
    for plan in by_target(plans, "droplet"):
        ref = plan.outputs["image"]
        assert "@sha256:" in ref
        image = plan.one(IMAGE).inputs
        assert image["push"] is True
        assert image["dockerfile"]["location"].endswith("/Dockerfile")
        assert ref.startswith(image["tags"][0].rsplit(":", 1)[0] + "@")
        unit = unit_file(cloud_config(plan))
        exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
        assert f"pull {ref}\n" in unit and exec_start.endswith(f" {ref}")


def test_droplet_runs_the_image_under_systemd_with_restart_and_plain_http_on_80(plans):
    for plan in by_target(plans, "droplet"):
        config = cloud_config(plan)
        assert "docker.io" in config["packages"]
        unit = unit_file(config)
        assert "Restart=on-failure" in unit
        assert "--publish 80:5000" in unit and "ROBOJAM_BIND=0.0.0.0:5000" in unit
        assert "--user 10001:10001" in unit and "--cap-drop ALL" in unit
        assert ["systemctl", "enable", "--now", "robojam.service"] in config["runcmd"]
        assert "screen" not in plan.one(DROPLET).inputs["userData"]
        assert plan.outputs["url"] == f"http://{plan.outputs['ip']}"


def test_droplet_logs_in_with_read_only_registry_credentials(plans):
    for plan in by_target(plans, "droplet"):
        creds = {
            c.name: c.inputs
            for c in plan.of_type(
                "digitalocean:index/containerRegistryDockerCredentials:ContainerRegistryDockerCredentials"
            )
        }
        pull = [c for c in creds.values() if c["write"] is False]
        assert len(pull) == 1
        config_file = next(
            f for f in cloud_config(plan)["write_files"] if f["path"] == "/etc/robojam/docker/config.json"
        )
        assert config_file["permissions"] == "0600"
        assert json.loads(config_file["content"])["auths"]
        assert "--config /etc/robojam/docker pull" in unit_file(cloud_config(plan))


def test_droplet_with_a_domain_puts_caddy_in_front_and_serves_https():
    plan = plan_stack("dev", {"robojam:domain": "jam.example.org", "robojam:acmeEmail": "ops@example.org"})
    config = cloud_config(plan)
    assert "caddy" in config["packages"]
    caddyfile = next(f["content"] for f in config["write_files"] if f["path"] == "/etc/caddy/Caddyfile")
    assert "jam.example.org {" in caddyfile and "reverse_proxy 127.0.0.1:5000" in caddyfile
    assert "email ops@example.org" in caddyfile
    assert "--publish 127.0.0.1:5000:5000" in unit_file(config)  # the container is not exposed directly
    assert plan.outputs["url"] == "https://jam.example.org"


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
    assert "pull ghcr.io/example/robojam:1.0\n" in unit_file(cloud_config(plan))
    assert plan.outputs["image"] == "ghcr.io/example/robojam:1.0"


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


def test_gke_kubernetes_provider_uses_a_kubeconfig_with_gke_auth_plugin(plans):
    for plan in by_target(plans, "gke"):
        provider = plan.one("pulumi:providers:kubernetes").inputs
        kubeconfig = yaml.safe_load(provider["kubeconfig"])
        user = kubeconfig["users"][0]["user"]
        assert user["exec"]["command"] == "gke-gcloud-auth-plugin"
        assert "token" not in user and "client-key-data" not in user
        assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://198.51.100.1"


def container(plan: Plan) -> dict:
    return plan.one(DEPLOYMENT).inputs["spec"]["template"]["spec"]["containers"][0]


def test_gke_deployment_probes_resources_and_security_context(plans):
    for plan in by_target(plans, "gke"):
        deployment = plan.one(DEPLOYMENT).inputs
        assert deployment["spec"]["replicas"] == plan.config["robojam:replicas"]
        c = container(plan)
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}]
        assert {"name": "ROBOJAM_BIND", "value": "0.0.0.0:5000"} in c["env"]
        assert set(c["resources"]["requests"]) == {"cpu", "memory"} == set(c["resources"]["limits"])
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert sc["readOnlyRootFilesystem"] is True
        pod = deployment["spec"]["template"]["spec"]
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]


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
    from infra.components.image import CONTAINER_PORT, SERVICE_UID
    from robojam_format.layout import REPO_ROOT

    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and users[-1] == str(SERVICE_UID)
    assert f"ROBOJAM_BIND=0.0.0.0:{CONTAINER_PORT}" in dockerfile
