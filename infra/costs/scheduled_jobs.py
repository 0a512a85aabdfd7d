"""Scheduled jobs: a Cloud Scheduler job and the Cloud Run job it runs (the training VM's restarter).

The Cloud Run job bills per vCPU-second and GiB-second while an execution runs (instance-based, as jobs are):
executions a month = the month's minutes / the schedule's interval, each `restarter_run_seconds` long (an
assumption: the gcloud image starting and a few gcloud calls). Cloud Scheduler bills per job a month, with a few
jobs free per billing account, handed out in billing order as the other account-wide allowances are.
"""

from __future__ import annotations

import re

from infra.costs.context import PricingContext
from infra.costs.estimate import Priced, PriceLine
from infra.costs.stack import quantity, region_of_location
from infra.tables import resource_types as types

EVERY_N_MINUTES = re.compile(r"^\*/([0-9]+) \* \* \* \*$")  # the cron form the program uses: "*/10 * * * *"


def interval_minutes(schedule: str | None) -> float:
    """Minutes between runs of a `*/N * * * *` schedule; anything else is priced as once an hour (noted)."""
    match = EVERY_N_MINUTES.match(schedule or "")
    return float(match.group(1)) if match else 60.0


def _schedule_of(job, ctx: PricingContext) -> str | None:
    name = job.inputs.get("name")
    for other in ctx.resources(types.GCP_SCHEDULER_JOB):
        if str((other.inputs.get("httpTarget") or {}).get("uri", "")).endswith(f"/jobs/{name}:run"):
            return other.inputs.get("schedule")
    return None


def run_job_lines(res, ctx: PricingContext) -> Priced:
    """vCPU and memory of a scheduled Cloud Run job's executions for a month (none when nothing schedules it)."""
    schedule = _schedule_of(res, ctx)
    if schedule is None:
        return Priced()
    container = (((res.inputs.get("template") or {}).get("template") or {}).get("containers") or [{}])[0]
    limits = (container.get("resources") or {}).get("limits") or {}
    cpu = quantity(str(limits.get("cpu", "1")))
    gib = quantity(str(limits.get("memory", "512Mi"))) / 2**30
    minutes = interval_minutes(schedule)
    seconds = ctx.assumptions["restarter_run_seconds"]
    runs = ctx.catalogue.hours_per_month * 60 / minutes
    hours = runs * seconds / 3600
    note = f"{runs:.0f} runs a month (every {minutes:g} min) x {seconds:g} s each (assumed)"
    region = region_of_location(res.inputs.get("location"))
    fields = {"unit": "vCPU", "category": "other", "hours": hours, "region": region}
    lines: list[PriceLine] = [
        ctx.priced(res, "run-job-cpu", "vcpu", component=f"job vCPU x{cpu:g}", quantity=cpu, note=note, **fields),
        ctx.priced(
            res, "run-job-memory", "gib", component=f"job memory {gib:g} GiB", quantity=gib, **{**fields, "unit": "GiB"}
        ),
    ]
    return Priced(tuple(lines))


def scheduler_lines(res, ctx: PricingContext) -> Priced:
    """One Cloud Scheduler job a month; the billing account's free jobs go to the first ones in billing order."""
    item = ctx.find("scheduler-job", "job")
    free = int(item.extra.get("free_quantity", 0)) if item else 0
    earlier = ctx.before(res, lambda r: r.type == types.GCP_SCHEDULER_JOB)
    inside = earlier < free
    note = f"one of the {free} free jobs per billing account" if inside else f"beyond the {free} free jobs"
    return Priced(
        (
            ctx.priced(
                res,
                "scheduler-job",
                "job",
                region="all",
                component="scheduler job",
                quantity=0 if inside else 1,
                unit="job",
                category="other",
                note=note,
            ),
        )
    )


PRICERS = {types.GCP_RUN_JOB: run_job_lines, types.GCP_SCHEDULER_JOB: scheduler_lines}
