"""Shared command-line plumbing: quiet TensorFlow, one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from model.data import DataError

# Before TensorFlow is first imported: keep its C++ start-up chatter out of the CLIs' output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class CLIError(Exception):
    """A user-facing failure; its message is printed as one line."""


def fail(message: str):
    raise CLIError(message)


def cli_main(main: Callable[[list[str] | None], int]) -> None:
    """Run `main`, turning expected failures into `error: ...` on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        code = main(None)
    except (CLIError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        code = 130
    sys.exit(code)
