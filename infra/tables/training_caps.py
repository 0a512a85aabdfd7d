"""The training run's caps: the most a stack may allow (pure data: the config keys and the policy pack share it)."""

from __future__ import annotations

MAX_RUN_HOURS_LIMIT = 168  # a week: the hard stop exists so a forgotten VM stops costing money
MAX_RESTARTS_LIMIT = 50  # restarts after preemptions; at ~$0.01-0.05 each in lost work (infra.costs) still bounded
