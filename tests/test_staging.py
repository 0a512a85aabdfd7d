"""`make staging`: the image built with buildah and each target run under podman, as deployed (staging/).

The fast tests pin what staging reads from the plan and the few changes it makes (staging.adapt); the
end-to-end tests run `python -m staging` once (about 4 minutes cold, 2 warm; root, Debian's podman, buildah,
debootstrap, runc, catatonit, caddy and curl, which .ci/run installs) and check each step's result.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from support import require

from robojam_format.layout import REPO_ROOT
from staging import adapt, cli
from staging.context import Context
from staging.droplet_unit import parse_docker, parse_unit, seconds
from staging.engine import TOOLS, Engine, StagingError
from staging.report import StepResult
from staging.step_droplet import unit_for
from staging.step_gke import deployment
from staging.step_training import STANDINS, uv_wheel

pytestmark = pytest.mark.staging

STEPS = ["image", "droplet", "https", "gke", "training"]


# --- what staging reads from the plan, and the changes it makes -------------------------------------------


def test_droplet_run_keeps_every_flag_of_the_unit_but_the_listed_ones():
    unit = unit_for()
    flags = [name for name, _ in unit.run.options]
    assert {"--read-only", "--user", "--cap-drop", "--tmpfs", "--security-opt"} <= set(flags)
    argv = adapt.droplet_run(unit.run, "localhost/robojam:staging", 5099)
    assert argv[:2] == ["podman", "run"] and argv[-1] == "localhost/robojam:staging"
    assert "--publish" not in argv and "-p" not in argv
    assert "ROBOJAM_BIND=127.0.0.1:5099" in argv
    for name, value in unit.run.options:  # everything else, in the unit's order
        if name not in ("--publish", "-p") and not (value or "").startswith("ROBOJAM_BIND="):
            assert name in argv and (value is None or argv[argv.index(name) + 1] == value or value in argv)
    assert unit.image != "localhost/robojam:staging" and unit.image not in argv


def test_docker_lines_parse_like_docker_and_unknown_flags_are_refused():
    run = parse_docker("-/usr/bin/docker --config /etc/x run --rm -e A=1 --env=B=2 --name n img arg")
    assert run.subcommand == "run" and run.args == ["img", "arg"]
    assert run.options == [("--rm", None), ("-e", "A=1"), ("--env", "B=2"), ("--name", "n")]
    stop = parse_docker("/usr/bin/docker stop --time 40 robojam")
    assert stop.values("--time") == ["40"] and stop.args == ["robojam"]
    with pytest.raises(StagingError, match="unknown docker run option --gpus"):
        parse_docker("/usr/bin/docker run --gpus all img")
    unit = parse_unit("[Service]\nExecStartPre=-a\nExecStartPre=b\nTimeoutStopSec=1min 30s\n")
    assert unit["Service"]["ExecStartPre"] == ["-a", "b"] and seconds("1min 30s") == 90 and seconds("500ms") == 0.5


def test_gke_manifest_changes_are_exactly_the_listed_ones():
    recorded = deployment()
    changed = adapt.kube_deployment(recorded, "localhost/robojam:staging", 5099)
    assert changed["spec"]["replicas"] == 1 and changed["spec"]["template"]["spec"]["hostNetwork"] is True
    (before,) = recorded["spec"]["template"]["spec"]["containers"]
    (after,) = changed["spec"]["template"]["spec"]["containers"]
    assert after["image"] == "localhost/robojam:staging"
    assert {k for k in before if k not in after} <= {"ports", "livenessProbe", "readinessProbe", "startupProbe"}
    assert after["securityContext"] == before["securityContext"]  # read-only root, non-root UID: untouched
    assert after["volumeMounts"] == before["volumeMounts"] and after["resources"] == before["resources"]
    assert (
        changed["spec"]["template"]["spec"]["securityContext"]
        == recorded["spec"]["template"]["spec"]["securityContext"]
    )
    assert {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}.items() <= adapt.probe_paths(recorded).items()
    assert recorded["spec"]["template"]["spec"]["containers"][0]["image"] != "localhost/robojam:staging"  # a copy


def test_caddy_config_listens_on_loopback_with_the_internal_ca_and_finds_private_paths():
    not_found = [{"handler": "static_response", "status_code": 404}]
    blocked = {"match": [{"path": ["/metrics", "/metrics/*"]}], "handle": not_found}
    upstreams = [{"dial": "127.0.0.1:5001"}, {"dial": "127.0.0.1:5002"}]
    proxy = {"handle": [{"handler": "reverse_proxy", "upstreams": upstreams}]}
    config = {
        "apps": {
            "http": {"servers": {"srv0": {"listen": [":443"], "routes": [blocked, proxy]}}},
            "tls": {"automation": {"policies": [{"issuers": [{"module": "acme"}]}]}},
        }
    }
    ports = {"127.0.0.1:5001": "127.0.0.1:6001", "127.0.0.1:5002": "127.0.0.1:6002"}
    out = adapt.caddy_json(config, http_port=7080, https_port=7443, upstream=ports.get, storage="/s")
    server = out["apps"]["http"]["servers"]["srv0"]
    assert server["listen"] == ["127.0.0.1:7443"] and out["admin"] == {"disabled": True}
    dials = [u["dial"] for u in server["routes"][1]["handle"][0]["upstreams"]]
    assert dials == ["127.0.0.1:6001", "127.0.0.1:6002"]
    assert out["apps"]["tls"]["automation"]["policies"] == [{"issuers": [{"module": "internal"}]}]
    assert out["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False
    assert adapt.blocked_paths(config) == ["/metrics"]
    assert config["apps"]["http"]["servers"]["srv0"]["listen"] == [":443"]  # the input is not modified


def test_engine_state_is_private_to_the_build_folder(tmp_path):
    engine = Engine.under(tmp_path)
    for name in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF"):
        path = Path(engine.env[name])
        assert path.is_file() and path.is_relative_to(tmp_path)
    text = "".join(Path(engine.env[n]).read_text() for n in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"))
    for key in ("graphroot", "runroot", "tmp_dir", "volume_path", "network_config_dir", "events_logfile_path"):
        (line,) = [line for line in text.splitlines() if line.startswith(key)]
        assert str(tmp_path) in line, line
    assert (
        'netns = "host"' in text
        and "unqualified-search-registries = []" in Path(engine.env["CONTAINERS_REGISTRIES_CONF"]).read_text()
    )


def test_a_failing_step_fails_the_run_with_its_log_tail_and_skips_what_needs_the_image(tmp_path):
    def image(ctx):
        for i in range(60):
            ctx.log(f"build line {i}")
        raise StagingError("buildah exited 1")

    def training(ctx):
        return "trained", {"epochs": 1}

    ctx = Context(build_dir=tmp_path, engine=Engine.under(tmp_path))
    chosen = {"image": (image, False), "droplet": (lambda ctx: ("never", {}), True), "training": (training, False)}
    results = cli.run_steps(ctx, chosen, out=io.StringIO())
    assert [(r.name, r.result) for r in results] == [("image", "failed"), ("droplet", "skipped"), ("training", "ok")]
    out, err = io.StringIO(), io.StringIO()
    assert cli.finish(results, out=out, err=err) == 1
    table = out.getvalue().splitlines()
    assert table[1].split() == ["step", "result", "seconds", "detail"]
    assert table[3].split()[:2] == ["image", "failed"] and "buildah exited 1" in table[3]
    assert table[4].split()[:2] == ["droplet", "skipped"] and table[5].split()[:2] == ["training", "ok"]
    assert "--- image failed" in err.getvalue() and "build line 59" in err.getvalue()
    assert "build line 10" not in err.getvalue()  # a tail, not the whole log
    assert cli.finish([StepResult("training", "ok", 1.0, tmp_path / "x.log")], out=out, err=err) == 0
    assert cli.finish([], out=out, err=err) == 1


def test_gcloud_standin_maps_the_bucket_to_a_folder(tmp_path):
    env = {**os.environ, "STAGING_CALLS": str(tmp_path / "calls"), "STAGING_BUCKETS": str(tmp_path / "b")}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "a.txt").write_text("a")

    def gcloud(*args):
        return subprocess.run([str(STANDINS / "gcloud"), *args], env=env, capture_output=True, text=True, timeout=30)

    assert gcloud("storage", "cp", "--recursive", str(tmp_path / "run"), "gs://bk/runs/").returncode == 0
    assert (tmp_path / "b" / "bk" / "runs" / "run" / "a.txt").read_text() == "a"
    assert gcloud("storage", "cp", "gs://bk/runs/run/a.txt", str(tmp_path / "copy.txt")).returncode == 0
    assert (tmp_path / "copy.txt").read_text() == "a"
    missing = gcloud("storage", "cp", "gs://bk/none", str(tmp_path / "n"))
    assert missing.returncode != 0 and "not found" in missing.stderr
    assert gcloud("compute", "instances", "list").returncode == 2
    assert (tmp_path / "calls").read_text().count("gcloud storage cp") == 3


def test_uv_standin_installs_from_its_wheel_and_its_pip_refuses_an_undeclared_extra(tmp_path):
    wheel = uv_wheel(tmp_path / "wheels")
    venv = tmp_path / "bootstrap"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheel.parent)}
    target = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(tmp_path / "t"), "uv>=0.4,<1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert target.returncode == 0, target.stderr
    script = tmp_path / "t" / "bin" / "uv"
    assert script.read_bytes() == (STANDINS / "uv").read_bytes() and os.access(script, os.X_OK)
    env = {
        **os.environ,
        "STAGING_CALLS": str(tmp_path / "calls"),
        "STAGING_PYTHON": sys.executable,
        "STAGING_TRAIN_SITE": sysconfig.get_paths()["purelib"],
    }
    made = subprocess.run(
        [str(script), "venv", "--seed", "--python", "3.12", str(tmp_path / "venv")], env=env, timeout=120
    )
    assert made.returncode == 0
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "0"\n[project.optional-dependencies]\ncpu = []\n'
    )
    refused = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "pip"), "install", ".[train-gpu]"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode != 0 and "no extra 'train-gpu'" in refused.stderr
    seen = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c", "import numpy"], timeout=60)
    assert seen.returncode == 0  # the local Python's packages are visible in the stand-in's venv


# --- end to end: `python -m staging` ------------------------------------------------------------------------

GLOBAL_STATE = (Path("/etc/containers"), Path("/etc/cni/net.d"), Path("/run/containers"), Path("/var/lib/cni"))


def snapshot() -> dict[str, list[str]]:
    return {str(p): sorted(os.listdir(p)) if p.is_dir() else [] for p in GLOBAL_STATE}


@pytest.fixture(scope="module")
def staging_run(tmp_path_factory):
    for tool in TOOLS:
        require(shutil.which(tool) is not None, f"{tool} is not installed (.ci/run installs it with apt)")
    require(os.geteuid() == 0, "staging runs podman, debootstrap and mount namespaces as root")
    data = Path(os.environ.get("ROBOJAM_DATA", REPO_ROOT.parent / "shared" / "data"))
    require((data / "TinyPerformanceCorpus.h5").is_file(), f"MicroJam corpus not found in {data}")
    results = tmp_path_factory.mktemp("staging") / "results.json"
    before = snapshot()
    done = subprocess.run(
        [sys.executable, "-m", "staging", "--json", str(results)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800, env={**os.environ, "ROBOJAM_DATA": str(data)},
    )  # fmt: skip
    return {
        "done": done,
        "steps": {r["name"]: r for r in json.loads(results.read_text())} if results.is_file() else {},
        "global_before": before,
        "global_after": snapshot(),
    }


def step(staging_run, name: str) -> dict:
    result = staging_run["steps"].get(name)
    assert result is not None, staging_run["done"].stdout[-3000:] + staging_run["done"].stderr[-3000:]
    assert result["result"] == "ok", f"{name}: {result['detail']}\n{staging_run['done'].stderr[-4000:]}"
    return result["measured"]


@pytest.mark.timeout(1800)
def test_make_staging_passes_with_one_summary_table(staging_run):
    done = staging_run["done"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["step", "result", "seconds"])
    rows = [line.split()[:2] for line in lines[header + 2 : header + 2 + len(STEPS)]]
    assert rows == [[name, "ok"] for name in STEPS]
    assert sum("caveat: the base image is a stand-in" in line for line in lines) == 1


@pytest.mark.timeout(1800)
def test_image_is_built_from_the_stand_in_base(staging_run):
    measured = step(staging_run, "image")
    assert measured["base"] == "python:3.11-slim-bookworm" and 50 < measured["size_mb"] < 2000
    assert measured["build_seconds"] > 0


@pytest.mark.timeout(1800)
def test_droplet_serves_and_stops_within_the_units_timeout(staging_run):
    measured = step(staging_run, "droplet")
    assert measured["predict_touches"] > 0 and measured["stop_seconds"] < measured["stop_timeout"]
    assert measured["in_flight_at_stop"] is None or measured["in_flight_at_stop"] >= 2


@pytest.mark.timeout(1800)
def test_https_through_caddy_with_the_internal_ca(staging_run):
    measured = step(staging_run, "https")
    assert measured["validated"] is True


@pytest.mark.timeout(1800)
def test_gke_deployment_runs_under_kube_play_as_configured(staging_run):
    measured = step(staging_run, "gke")
    assert measured["uid"] == 10001 and set(measured["probes"].values()) >= {"/healthz", "/readyz"}


@pytest.mark.timeout(1800)
def test_training_vm_script_trains_uploads_and_powers_off(staging_run):
    measured = step(staging_run, "training")
    assert {"weights/staging.npz", "runs/staging/best.keras"} <= set(measured["bucket"])


@pytest.mark.timeout(1800)
def test_staging_changes_nothing_global(staging_run):
    assert staging_run["global_after"] == staging_run["global_before"]
