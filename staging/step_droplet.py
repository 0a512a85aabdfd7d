"""Step 2: the droplet's container, run with the flags its systemd unit uses (read from the rendered cloud-init).

Checks /readyz, a MicroJam-format /api/predict and the image's HEALTHCHECK, then stops it the way the unit does
(its ExecStop) while requests are in flight: they must all complete and the stop must end, with the service's
own clean exit, within the unit's stop timeout.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from infra.mock_plan import plan_stack
from staging import adapt, client
from staging.containers import foreground
from staging.context import Context, free_port
from staging.droplet_unit import droplet_unit
from staging.engine import StagingError

STACK = "dev"
DROPLET = "digitalocean:index/droplet:Droplet"
IN_FLIGHT_REQUESTS = 2  # fewer than the service's threads, so /metrics can still answer while they run


def unit_for(stack: str = STACK, overrides: dict | None = None):
    return droplet_unit(plan_stack(stack, overrides).one(DROPLET).inputs["userData"])


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


def stop_with_requests_in_flight(ctx: Context, url: str, stop: list[str], process, limit: float) -> dict:
    """Start long requests, wait until the service is answering them, stop; every one must complete."""
    with concurrent.futures.ThreadPoolExecutor(IN_FLIGHT_REQUESTS) as pool:
        futures = [
            pool.submit(client.predict, url, touches=1500, seconds=10.0, seed=seed, timeout=limit)
            for seed in range(IN_FLIGHT_REQUESTS)
        ]
        deadline = time.monotonic() + 10
        seen = None
        while time.monotonic() < deadline and not any(f.done() for f in futures):
            seen = in_flight(url)
            if seen is None or seen >= IN_FLIGHT_REQUESTS:
                break
            time.sleep(0.01)
        if any(f.done() for f in futures):
            raise StagingError("the in-flight requests finished before the stop began; make them longer.")
        ctx.log(f"in flight when stopping: {seen if seen is not None else 'unknown (no /metrics)'}")
        start = time.monotonic()
        done = ctx.engine.run(stop[0], *stop[1:], timeout=limit + 30, check=False)
        ctx.log(f"$ {' '.join(stop)} -> {done.returncode} {done.stdout.strip()} {done.stderr.strip()}")
        try:
            exit_code = process.wait(timeout=max(limit - (time.monotonic() - start), 1))
        except subprocess.TimeoutExpired:
            raise StagingError(f"the container still ran {limit:.0f} s after the stop (the unit's limit).") from None
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


def run(ctx: Context) -> tuple[str, dict]:
    unit = unit_for()
    port = free_port()
    name = (unit.run.values("--name") or ["robojam"])[-1]
    argv = adapt.droplet_run(unit.run, ctx.facts["image"], port)
    stop = adapt.droplet_stop(unit.stop, name)
    ctx.log(f"unit image {unit.image}; stop timeout {unit.timeout_stop:g} s, docker stop waits {unit.stop_time:g} s")
    ctx.log("$ " + " ".join(argv))
    url = f"http://127.0.0.1:{port}"
    with foreground(ctx.engine, argv, name, ctx.path("logs") / "droplet-container.log") as process:
        ready = client.wait_for(f"{url}/readyz", timeout=120)
        events = client.predict(url)
        health = ctx.engine.podman("healthcheck", "run", name, check=False)
        if health.returncode != 0:
            raise StagingError(f"the image's HEALTHCHECK failed: {(health.stdout + health.stderr).strip()}")
        stopped = stop_with_requests_in_flight(ctx, url, stop, process, unit.timeout_stop)
    measured = {"ready_seconds": round(ready, 1), "predict_touches": len(events), **stopped}
    measured["stop_timeout"] = unit.timeout_stop
    detail = (
        f"ready in {ready:.1f} s, /api/predict {len(events)} touches, HEALTHCHECK ok, stopped in "
        f"{stopped['stop_seconds']:.1f} s (limit {unit.timeout_stop:g} s) with {IN_FLIGHT_REQUESTS} requests completed"
    )
    return detail, measured
