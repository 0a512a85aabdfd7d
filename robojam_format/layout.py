"""Where things live: the one definition of the repository root and of the shipped weights' path.

The serving image copies the same layout under /app, so these paths hold there too.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_WEIGHTS = REPO_ROOT / "model" / "weights" / "robojam.npz"
