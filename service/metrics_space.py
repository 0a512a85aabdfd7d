"""Disk space for multiprocess metrics, reserved up front (stdlib only: the gunicorn config imports it first).

prometheus-client keeps each process's values in files it memory-maps and grows on demand. On a full tmpfs,
writing to a mapped page that has no backing space kills the process with SIGBUS, which no Python code can catch:
the master dies with nothing logged, or workers die in a loop. Reserving the files with posix_fallocate turns that
into an ordinary OSError at a moment we choose: at start (one clear line, exit) or when a worker boots (that
worker runs without metrics instead of crashing). Label values are bounded (service/metrics.py), so the reserved
size is never outgrown.
"""

from __future__ import annotations

import os

FILE_BYTES = 256 * 1024  # per metrics file; bounded labels need well under 100 KiB
FILE_PREFIXES = ("counter", "histogram", "gauge_livesum", "gauge_max")  # the files one process of this service writes
PROBE_NAME = ".robojam-space-check"


def reserve(directory: str, pid: int) -> None:
    """Create and allocate the metric files of process `pid`; OSError (e.g. ENOSPC) if that is impossible."""
    for prefix in FILE_PREFIXES:
        fd = os.open(os.path.join(directory, f"{prefix}_{pid}.db"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, FILE_BYTES)
        finally:
            os.close(fd)


def check(directory: str, processes: int) -> str | None:
    """None if `directory` can hold the files of `processes` processes, else one sentence saying why not."""
    need = processes * len(FILE_PREFIXES) * FILE_BYTES
    probe = os.path.join(directory, PROBE_NAME)
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, need)
        finally:
            os.close(fd)
            os.remove(probe)
    except OSError as exc:
        return (
            f"the metrics directory {directory} cannot hold {need // 1024} KiB for {processes} processes "
            f"({exc.strerror or exc}); free space there or set PROMETHEUS_MULTIPROC_DIR to a writable directory."
        )
    return None
