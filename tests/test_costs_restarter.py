"""Issue 18 item 5: the train stack prices its restarter and states what a spot preemption adds."""

from __future__ import annotations

import pytest

from infra.costs.catalogue import load_catalogue
from infra.costs.pricing import price_plan
from infra.costs.table import preemption_sentence
from infra.mock_plan import plan_stack

CAT = load_catalogue()


def test_the_restarter_is_priced_per_run_of_its_schedule_and_the_scheduler_within_the_free_jobs():
    est = price_plan(plan_stack("train"), CAT)
    job = [line for line in est.lines if line.name == "train-restarter-job"]
    runs = CAT.hours_per_month * 60 / 10  # every 10 minutes
    hours = runs * CAT.assumption("restarter_run_seconds") / 3600
    assert [line.monthly for line in job] == pytest.approx([0.0648 * hours, 0.0072 * 0.5 * hours])
    assert all(line.status == "priced" for line in job)
    (schedule,) = [line for line in est.lines if line.name == "train-restarter-schedule"]
    assert schedule.status == "priced" and schedule.monthly == 0.0 and "free jobs" in schedule.note
    assert not [line for line in est.lines if line.status == "unpriced"]


def test_a_training_run_states_what_one_preemption_adds_at_the_spot_rate():
    (run,) = price_plan(plan_stack("train", {"robojam:spot": True}), CAT).training_runs
    minutes = CAT.assumption("epoch_minutes") / 2 + CAT.assumption("restart_setup_minutes")
    assert run.preemption.cost == pytest.approx(run.spot.hourly * minutes / 60)
    text = preemption_sentence(run.to_dict()["preemption"])
    assert "half an epoch redone" in text and "within 10 minutes" in text
