"""gunicorn settings for RoboJam, every one overridable by a ROBOJAM_* environment variable.

    gunicorn -c service/gunicorn_conf.py 'service.app:create_app()'

The app is preloaded in the master, so the weights are read once and shared copy-on-write by all workers.
Metrics run in prometheus-client's multiprocess mode: this module points PROMETHEUS_MULTIPROC_DIR at a fresh
directory before the app (and prometheus_client) is imported, and drops a worker's live gauges when it exits.
Stdlib (and the stdlib-only service.settings) at import time, so the file loads before anything else.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import tempfile

# One BLAS thread per worker: workers are already one per CPU, and more threads only contend (+63 % req/s measured
# with 1 on 2 vCPU). Set before anything imports NumPy.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from service import metrics_space  # noqa: E402  (stdlib only)
from service.settings import env_int  # noqa: E402

SHM = "/dev/shm"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _int(name: str, default: int, minimum: int = 0) -> int:
    return env_int(os.environ, name, default, minimum)


def _bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").lower()
    if raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(f"{name} must be a boolean (1/0, true/false), got {raw!r}.")
    return raw in ("1", "true", "yes", "on")


def _writable_dir(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def cgroup_cpus(path: str = "/sys/fs/cgroup/cpu.max") -> int | None:
    """CPUs allowed by a cgroup v2 quota ("200000 100000" -> 2), None when unlimited or unknown."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
        return max(1, -(-int(quota) // int(period)))  # ceiling
    except (OSError, ValueError):  # missing file, "max", malformed
        return None


def default_workers() -> int:
    """One worker per usable CPU (inference is CPU-bound), capped by a container's CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_cpus()
    return max(1, min(cpus, quota) if quota else cpus)


bind = [address.strip() for address in _env("ROBOJAM_BIND", "127.0.0.1:5000").split(",") if address.strip()]
workers = _int("ROBOJAM_WORKERS", default_workers(), minimum=1)
worker_class = "service.worker.JsonErrorThreadWorker"  # gthread, JSON for HTTP-level errors
# Many threads: a request thread mostly waits on the batching loop, and spare threads keep a few slow clients
# from holding them all (service/worker.py bounds how long each may).
threads = _int("ROBOJAM_THREADS", 64, minimum=1)
timeout = _int("ROBOJAM_TIMEOUT", 30, minimum=1)
graceful_timeout = _int("ROBOJAM_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = _int("ROBOJAM_KEEPALIVE", 5, minimum=0)
max_requests = _int("ROBOJAM_MAX_REQUESTS", 0)
max_requests_jitter = _int("ROBOJAM_MAX_REQUESTS_JITTER", 0)
preload_app = _bool("ROBOJAM_PRELOAD", True)
# The heartbeat file is touched constantly; on a disk-backed /tmp that can stall workers, so prefer tmpfs.
worker_tmp_dir = _env("ROBOJAM_WORKER_TMP_DIR", SHM if _writable_dir(SHM) else tempfile.gettempdir())
accesslog = _env("ROBOJAM_ACCESS_LOG", "-")
errorlog = _env("ROBOJAM_ERROR_LOG", "-")
loglevel = _env("ROBOJAM_LOG_LEVEL", "info")
proc_name = "robojam"
# gunicorn 24+ opens a control socket under $HOME by default: a non-root container user may have no writable
# home, and two servers on one machine would fight over the path. Nothing here uses it.
control_socket_disable = True

# Optional TLS, as the original server served HTTPS on :5000: both files or neither.
certfile = os.environ.get("ROBOJAM_CERTFILE") or None
keyfile = os.environ.get("ROBOJAM_KEYFILE") or None
if bool(certfile) != bool(keyfile):
    raise ValueError("set both ROBOJAM_CERTFILE and ROBOJAM_KEYFILE for TLS, or neither.")
for _path in (certfile, keyfile):
    if _path and not os.path.isfile(_path):
        raise ValueError(f"TLS file not found: {_path}.")


def _check_app_settings() -> None:
    """Refuse to start, with one line and no traceback, on bad app settings or a bad weights file.

    Checked here, before the metrics directory exists, so a failed start leaves nothing behind in /dev/shm.
    """
    from service import settings
    from service.artifact import ArtifactError, load_artifact

    try:
        load_artifact(settings.from_env()["ROBOJAM_WEIGHTS"])
    except (ArtifactError, ValueError) as exc:
        raise SystemExit(f"robojam: cannot start: {exc}") from None


_check_app_settings()

# Multiprocess metrics, set up before the app (and so prometheus_client) is imported: an operator-given
# PROMETHEUS_MULTIPROC_DIR is emptied of stale files; otherwise a private directory is made (on tmpfs when
# possible) and removed when the master exits. The marker variables keep this to the first read of this file
# (gunicorn re-reads it on SIGHUP while workers are still writing there).
_CREATED_MARKER, _PREPARED_MARKER = "ROBOJAM_CREATED_METRICS_DIR", "ROBOJAM_PREPARED_METRICS_DIR"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _created = tempfile.mkdtemp(prefix="robojam-metrics-", dir=SHM if _writable_dir(SHM) else None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_CREATED_MARKER] = _created
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]
_OWN_METRICS_DIR = METRICS_DIR == os.environ.get(_CREATED_MARKER)
_MASTER_PID = os.getpid()


def _remove_own_metrics_dir() -> None:
    if _OWN_METRICS_DIR and os.getpid() == _MASTER_PID:  # workers inherit atexit handlers: not theirs to run
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


atexit.register(_remove_own_metrics_dir)  # also after a failed start, when gunicorn's on_exit never runs
if os.environ.get(_PREPARED_MARKER) != METRICS_DIR:
    try:
        os.makedirs(METRICS_DIR, exist_ok=True)
        for _stale in glob.glob(os.path.join(METRICS_DIR, "*.db")):
            os.remove(_stale)
    except OSError as _exc:
        raise SystemExit(f"robojam: cannot start: the metrics directory {METRICS_DIR} is unusable ({_exc}).") from None
    # Room for every worker and the master, checked by allocating it: a full tmpfs later means SIGBUS, not an error.
    _problem = metrics_space.check(METRICS_DIR, workers + 1)
    if _problem:
        raise SystemExit(f"robojam: cannot start: {_problem}")
    os.environ[_PREPARED_MARKER] = METRICS_DIR
try:
    metrics_space.reserve(METRICS_DIR, os.getpid())  # the master writes metrics too (the app is preloaded)
except OSError as _exc:
    raise SystemExit(f"robojam: cannot start: the metrics directory {METRICS_DIR} is unusable ({_exc}).") from None


def post_fork(server, worker):
    """Reserve this worker's metric files; if that fails it serves without metrics instead of dying of SIGBUS."""
    try:
        metrics_space.reserve(METRICS_DIR, worker.pid)
    except OSError as exc:
        from service import metrics

        metrics.disable(f"cannot reserve metric files in {METRICS_DIR} ({exc.strerror or exc})")


def post_worker_init(worker):
    """Start this worker's warm-up inference at once instead of on its first request."""
    from service.app import start_warm_up

    start_warm_up(worker.wsgi)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, METRICS_DIR)


def on_exit(server):
    _remove_own_metrics_dir()
