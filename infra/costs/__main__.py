"""Entry point for `python -m infra.costs` (and `make costs`)."""

import sys

from infra.costs.cli import main

sys.exit(main())
