"""Entry point `pulumi up` runs (Pulumi.yaml `main: infra/`): build the stack for the selected target."""

import pathlib
import sys

# Pulumi runs this file by path, so the repository root (holding the `infra` package) may not be importable.
ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from infra.program import main  # noqa: E402

main()
