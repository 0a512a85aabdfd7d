"""`python -m staging`: see staging.cli."""

import sys

from staging.cli import main

sys.exit(main())
