"""Step results, the summary table and the failing step's log tail."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TAIL_LINES = 40


@dataclass
class StepResult:
    """What one step did: `ok`, `failed` or `skipped`, how long it took, what it measured, where its log is."""

    name: str
    result: str
    seconds: float
    log: Path
    detail: str = ""
    measured: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "result": self.result,
            "seconds": round(self.seconds, 1),
            "detail": self.detail,
            "measured": self.measured,
            "log": str(self.log),
        }


def table(results: list[StepResult]) -> str:
    """One row per step: step, result, seconds, and the step's one-line detail."""
    rows = [("step", "result", "seconds", "detail")]
    rows += [(r.name, r.result, f"{r.seconds:.1f}", r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a step's log (empty if it wrote none)."""
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
