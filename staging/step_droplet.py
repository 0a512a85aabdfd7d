"""Step 3: the droplet's container, deployed the way the program deploys it (read from the recorded `dev` plan).

The program's deploy step runs robojam-rollout (blue/green behind Caddy) with the container's run flags. Here:
the training step's artifact (a random stand-in when that step did not run) is promoted as a user promotes it
(staging.promotion: robojam:weights names it, the image is built with the plan's build arguments and label);
Caddy in front with the droplet's rendered Caddyfile; a first rollout of the shipped image; /readyz, a
MicroJam-format /api/predict and the image's HEALTHCHECK on the serving slot; a rollout to the promoted image
while one client polls /healthz through Caddy every 50 ms and another keeps POSTing /api/predict: failed polls,
the longest outage and failed predictions are measured and reported (the rollout's behaviour; staging fails only
if nothing got through); GET /api/model through Caddy must report the promoted artifact's sha256 (the plan's
`model` output's and the image label's) and run metadata; a rerun with the serving image does nothing; a rollback
to the shipped image (/api/model: the shipped sha256); then a stop the way the rollout stops a slot, with requests
in flight: they all complete and the container exits 0 within the rollout's stop timeout. Then a month unattended
(staging.droplet_month): the rollout's memory peak under a 1 GB cgroup, the droplet's log rotation and the
bytes per request, and a simulated reboot that must bring the serving slot back through Caddy.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import subprocess
import threading
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from infra.components.droplet import installed_caddyfile
from infra.mock_plan import plan_stack
from infra.tables import resource_types as types
from infra.tables.image_contract import HEALTH_PATH, READY_PATH
from robojam_format.layout import REPO_ROOT
from staging import caddy, client, promotion
from staging import droplet_month as month
from staging.client import POLL_SECONDS, Poller
from staging.context import IMAGE_NEXT, Context
from staging.droplet_rollout import Rollout, rollout_of, slots, write_files
from staging.errors import StagingError

STACK = "dev"
DROPLET = types.DO_DROPLET
CADDYFILE = "/etc/caddy/Caddyfile"
MODEL_PATH = "/api/model"
IN_FLIGHT_REQUESTS = 2  # fewer than the service's threads, so /metrics can still answer while they run


def plan(overrides: dict | None = None):
    return plan_stack(STACK, overrides)


def files_of(recorded) -> dict[str, str]:
    """What the droplet's cloud-init writes: path -> content."""
    return write_files(recorded.one(DROPLET).inputs["userData"])


def caddyfile_of(recorded, rollout: Rollout | None = None) -> str | None:
    """The Caddyfile the deploy step installs at CADDYFILE: the one the rollout switches (its PROXY_CONFIG)."""
    path = (rollout.env.get("PROXY_CONFIG") if rollout else None) or CADDYFILE
    if path != CADDYFILE:
        return files_of(recorded).get(path)
    for command in recorded.of_type(types.REMOTE_COMMAND):
        return installed_caddyfile(command.inputs["stdin"])
    return None


def in_flight(url: str) -> float | None:
    """The service's in-flight gauge, less the /metrics request asking; None if /metrics does not say."""
    try:
        reply = requests.get(f"{url}/metrics", timeout=2)
    except requests.RequestException:
        return None
    if reply.status_code != 200:
        return None
    for family in text_string_to_metric_families(reply.text):
        if family.name == "robojam_http_requests_in_flight":
            return sum(sample.value for sample in family.samples) - 1
    return None


def stop_with_requests_in_flight(ctx: Context, url: str, stop: list[str], wait_exit, limit: float) -> dict:
    """Start long requests, wait until the service is answering them, stop; every one must complete.

    `wait_exit(seconds)` returns the container's exit code once it has exited, or raises TimeoutError.
    """
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT_REQUESTS) as pool:
        futures = [
            pool.submit(
                client.predict, url, touches=1000, seconds=10.0, seed=seed, timeout=limit
            )  # the largest allowed
            for seed in range(IN_FLIGHT_REQUESTS)
        ]
        deadline = time.monotonic() + 10
        seen = None
        while time.monotonic() < deadline and not any(f.done() for f in futures):
            seen = in_flight(url)
            if seen is None or seen >= IN_FLIGHT_REQUESTS:
                break
            time.sleep(0.01)
        finished = [f for f in futures if f.done()]
        if finished:
            error = finished[0].exception()
            raise StagingError(f"an in-flight request ended before the stop began ({error or 'too short'}).")
        ctx.log(f"in flight when stopping: {seen if seen is not None else 'unknown (no /metrics)'}")
        start = time.monotonic()
        done = ctx.containers.run(stop[0], *stop[1:], timeout=limit + 30, check=False)
        ctx.log(f"$ {' '.join(stop)} -> {done.returncode} {done.stdout.strip()}")
        try:
            exit_code = wait_exit(max(limit - (time.monotonic() - start), 1))
        except TimeoutError:
            raise StagingError(f"the container still ran {limit:.0f} s after the stop began (the limit).") from None
        stop_seconds = time.monotonic() - start
        failures = []
        for f in futures:
            try:
                f.result(timeout=limit)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, whatever its type
                failures.append(f"{type(exc).__name__}: {exc}")
    if failures:
        raise StagingError(f"{len(failures)} of {IN_FLIGHT_REQUESTS} in-flight requests failed: {failures[0]}")
    if exit_code != 0:
        raise StagingError(f"the container exited {exit_code} on stop (137: killed, not a clean shutdown).")
    return {"stop_seconds": round(stop_seconds, 2), "in_flight_at_stop": seen}


def check_serving(ctx: Context, url: str, container: str) -> dict:
    ready = client.wait_for(f"{url}{READY_PATH}", timeout=120)
    events = client.predict(url)
    health = ctx.containers.podman("healthcheck", "run", container, check=False)
    if health.returncode != 0:
        raise StagingError(f"the image's HEALTHCHECK failed: {(health.stdout + health.stderr).strip()}")
    return {"ready_seconds": round(ready, 1), "predict_touches": len(events)}


# --- the rollout --------------------------------------------------------------------------------------------


def predict_loop(url: str, stop: threading.Event, outcomes: list) -> None:
    """POST /api/predict one after another, at most one every POLL_SECONDS (a fast error does not flood)."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            client.predict(url, timeout=30)
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001 - each failure is a finding
            outcomes.append(f"{type(exc).__name__}: {exc}")
        stop.wait(max(POLL_SECONDS - (time.monotonic() - started), 0))


def served_model(url: str) -> dict:
    """GET /api/model's body."""
    try:
        reply = requests.get(f"{url}{MODEL_PATH}", timeout=10)
    except requests.RequestException as exc:
        raise StagingError(f"GET {MODEL_PATH} through Caddy failed: {type(exc).__name__}") from None
    if reply.status_code != 200:
        raise StagingError(f"GET {MODEL_PATH} through Caddy answered {reply.status_code}: {reply.text[:200]}")
    return reply.json()


def check_model(url: str, what: str, model: dict, artifact_sha256: str, label: str | None = None) -> dict:
    """GET /api/model must show `model` (the plan's output); StagingError with one line otherwise."""
    served = served_model(url)
    why = promotion.mismatch(served, model, artifact_sha256, label)
    if why:
        raise StagingError(f"{what}: {why}")
    return served


def image_of(ctx: Context, container: str) -> str:
    return ctx.containers.podman("inspect", "--format", "{{.Config.Image}}", container).stdout.strip()


def weights_to_promote(ctx: Context) -> tuple[Path, str]:
    """The artifact to promote and where it came from: the training step's, else a random stand-in."""
    trained = ctx.facts.get("trained_weights")
    if trained:
        return Path(trained), f"the training step's weights/{Path(trained).name}"
    stand_in = promotion.stand_in_artifact(ctx.path("droplet") / "stand-in.npz")
    return stand_in, "a random stand-in from devtools.random_weights since no training step ran"


def run_rollout(ctx: Context, recorded, rollout: Rollout, promoted: promotion.Promoted) -> tuple[str, dict]:
    caddyfile = caddyfile_of(recorded, rollout)
    if caddyfile is None:
        path = rollout.env.get("PROXY_CONFIG") or CADDYFILE
        raise StagingError(f"the droplet's user-data writes no {path}; nothing is in front of gunicorn.")
    next_image, shipped = promoted.image, recorded.outputs["model"]
    log_args, log_opts = month.log_run_args(files_of(recorded).get(month.DAEMON_JSON))
    with month.memory_cgroup(ctx) as cgroup, slots(ctx, rollout) as runner, contextlib.ExitStack() as boot:
        runner.run_args = f"{month.cgroup_parent_args(cgroup)} {log_args}".strip()
        runner.proxy = caddy.prepare(ctx, caddyfile, runner.upstream, "droplet")
        front = f"http://127.0.0.1:{runner.proxy.http_port}"
        with caddy.running(ctx, runner.proxy):  # cloud-init starts Caddy before the first deploy
            runner.deploy(ctx.facts["image"])
            container, port = runner.serving()
            measured = check_serving(ctx, f"http://127.0.0.1:{port}", container)
            client.wait_for(f"{front}{READY_PATH}", timeout=30)
            client.predict(front)
            stop, outcomes = threading.Event(), []
            worker = threading.Thread(target=predict_loop, args=(front, stop, outcomes), daemon=True)
            with Poller(f"{front}{HEALTH_PATH}") as poller:
                worker.start()
                started = time.monotonic()
                with month.rss_peak(cgroup) as rss:
                    runner.deploy(next_image)
                rollout_seconds = time.monotonic() - started
                time.sleep(0.5)  # a few polls after the switch
                stop.set()
                worker.join(timeout=60)
            downtime = poller.downtime()
            ctx.log(f"rollout to {next_image}: {rollout_seconds:.1f} s, {downtime}, predicts {len(outcomes)}")
            failed = [o for o in outcomes if o != "ok"]
            if failed:  # measured and reported, like the downtime: the rollout's behaviour, not staging's
                kinds = {reason: failed.count(reason) for reason in dict.fromkeys(failed)}
                ctx.log(f"WARNING: {len(failed)} of {len(outcomes)} /api/predict during the rollout failed: {kinds}")
            if not outcomes or len(failed) == len(outcomes):
                raise StagingError(f"no /api/predict through Caddy succeeded during the rollout: {failed[:1]}")
            container, port = runner.serving()
            image = image_of(ctx, container)
            if image != next_image:
                raise StagingError(f"after the rollout {container} runs {image}, not {next_image}.")
            served = check_model(front, "after the promotion", promoted.model, promoted.sha256, promoted.label)
            again = runner.deploy(next_image)
            if "nothing to do" not in again or runner.serving() != (container, port):
                raise StagingError(f"a second rollout of the serving image changed something: {again.strip()}")
            # roll back: the previous image again (the user sets the previous robojam:weights and runs pulumi up)
            runner.deploy(ctx.facts["image"])
            container, port = runner.serving()
            if image_of(ctx, container) != ctx.facts["image"]:
                raise StagingError(f"after the rollback {container} runs {image_of(ctx, container)}.")
            client.wait_for(f"{front}{READY_PATH}", timeout=30)
            check_model(front, "after the rollback", shipped, promotion.sha256_of(REPO_ROOT / shipped["path"]))
            memory = month.peak(cgroup, rss[0], month.swap_bytes(recorded.one(DROPLET).inputs["userData"]))
            ctx.log(f"month: rollout memory {memory}")
            logs = month.log_burst(
                ctx, container, f"http://127.0.0.1:{port}", log_opts, month.month_requests(month.MONTH_RATE)
            )
            ctx.log(f"month: logs {logs}")

            def wait_exit(seconds: float) -> int:
                try:
                    done = ctx.containers.podman("wait", container, timeout=seconds, check=False)
                except subprocess.TimeoutExpired:
                    raise TimeoutError from None
                if done.returncode != 0:
                    raise TimeoutError
                return int(done.stdout.strip().splitlines()[-1])

            stop_argv = ["podman", "stop", "--time", str(int(rollout.stop_timeout)), container]
            stopped = stop_with_requests_in_flight(
                ctx, f"http://127.0.0.1:{port}", stop_argv, wait_exit, rollout.stop_timeout
            )
        # a reboot: Caddy went down with the block above; the slots stop, Docker starts them, systemd Caddy
        reboot = month.simulated_reboot(
            ctx,
            runner.names(),
            rollout.stop_timeout,
            lambda: boot.enter_context(caddy.running(ctx, runner.proxy)),
            f"{front}{READY_PATH}",
        )
    measured.update(memory, **logs, **reboot)
    measured.update(stopped, stop_timeout=rollout.stop_timeout, rollout_seconds=round(rollout_seconds, 1), **downtime)
    measured.update(predicts_during_rollout=len(outcomes), failed_predicts_during_rollout=len(failed))
    measured.update(promoted_sha256=served["sha256"], promoted_run=served["run"], rolled_back_sha256=shipped["sha256"])
    measured.update(promoted_build_seconds=promoted.build_seconds)
    dropped = (
        f"{len(failed)} of {len(outcomes)} /api/predict FAILED (see the log)"
        if failed
        else (f"{len(outcomes)} /api/predict all ok")
    )
    detail = (
        f"(run {served['run']}, sha256 {promotion.short(served['sha256'])}, image built in "
        f"{promoted.build_seconds:.0f} s): {MODEL_PATH} through Caddy reports it as the plan's `model` output and the "
        f"image label do; rollback: {MODEL_PATH} reports the shipped "
        f"{promotion.short(shipped['sha256'])}; "
        f"rollout {ctx.facts['image']} -> {next_image} in {rollout_seconds:.1f} s: {downtime['failed_polls']} of "
        f"{downtime['polls']} {HEALTH_PATH} polls (50 ms) failed through Caddy, longest outage "
        f"{downtime['longest_outage_s'] * 1000:.0f} ms, {dropped}; rerun did nothing; "
        f"stop with {IN_FLIGHT_REQUESTS} in flight {stopped['stop_seconds']:.1f} s (limit {rollout.stop_timeout:g} s); "
        f"{month.summary(memory, logs, reboot)}"
    )
    return detail, measured


def run(ctx: Context) -> tuple[str, dict]:
    recorded = plan()
    rollout = rollout_of(recorded)
    if rollout is None:
        raise StagingError("the dev stack's plan has no droplet rollout (a remote command running robojam-rollout).")
    source, origin = weights_to_promote(ctx)
    promoted = promotion.promote(ctx, source, plan, IMAGE_NEXT)
    ctx.log(f"promoted {origin}: {promoted.model}, image {promoted.image} built in {promoted.build_seconds} s")
    detail, measured = run_rollout(ctx, recorded, rollout, promoted)
    return f"promoted {origin} {detail}", {**measured, "promoted_from": origin}
