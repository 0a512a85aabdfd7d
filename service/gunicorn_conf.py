"""gunicorn settings for RoboJam, every one overridable by a ROBOJAM_* environment variable (service.settings).

    gunicorn -c service/gunicorn_conf.py 'service.app:create_app()'

The app is preloaded in the master, so the weights are read once and shared copy-on-write by all workers.
Metrics run in prometheus-client's multiprocess mode: this module points PROMETHEUS_MULTIPROC_DIR at a fresh
directory before the app (and prometheus_client) is imported, and drops a worker's live gauges when it exits.
Stdlib (and the stdlib-only service.settings) at import time, so the file loads before anything else.

Start-up problems (a bad setting, a bad weights file, an unusable or too small metrics directory) stop the
master with one line, `robojam: cannot start: ...`, no traceback, and leave no metrics directory behind.
Graceful shutdown: on SIGTERM a worker stops accepting, finishes its in-flight requests (the batching loop keeps
running) and exits; ROBOJAM_GRACEFUL_TIMEOUT bounds that, so a platform's termination grace period (GKE's
terminationGracePeriodSeconds, after any preStop delay) must be longer than it.
"""

from __future__ import annotations

import atexit
import os
import shutil

from service import metrics_space, settings  # stdlib only

settings.pin_blas_threads()  # before anything imports NumPy


def _cannot_start(reason: object) -> SystemExit:
    return SystemExit(f"robojam: cannot start: {reason}")


def _check_app() -> None:
    """The app's settings and the weights file, checked before anything is created (loaded again by the app)."""
    from robojam_format.artifact import ArtifactError
    from service.weights import configured_weights

    try:
        settings.from_env()
        configured_weights()
    except (ArtifactError, ValueError) as exc:
        raise _cannot_start(exc) from None


try:
    _listen = settings.listen()
    _listen.check_tls()  # as the original server served HTTPS on :5000: both files or neither
    _gunicorn = settings.gunicorn_settings()
except ValueError as _exc:
    raise _cannot_start(_exc) from None
_check_app()

bind = _listen.addresses
certfile = _listen.certfile
keyfile = _listen.keyfile
workers = _gunicorn.workers
worker_class = "service.worker.JsonErrorThreadWorker"  # gthread, JSON for HTTP-level errors
threads = _gunicorn.threads
timeout = _gunicorn.timeout
graceful_timeout = _gunicorn.graceful_timeout
keepalive = _gunicorn.keepalive
max_requests = _gunicorn.max_requests
max_requests_jitter = _gunicorn.max_requests_jitter
preload_app = _gunicorn.preload_app
worker_tmp_dir = _gunicorn.worker_tmp_dir
accesslog = _gunicorn.accesslog
errorlog = _gunicorn.errorlog
loglevel = _gunicorn.loglevel
proc_name = "robojam"
# gunicorn 24+ opens a control socket under $HOME by default: a non-root container user may have no writable
# home, and two servers on one machine would fight over the path. Nothing here uses it.
control_socket_disable = True

_MASTER_PID = os.getpid()
try:
    METRICS_DIR, _OWN_METRICS_DIR = settings.prepare_metrics_dir()
except OSError as _exc:
    raise _cannot_start(f"the metrics directory is unusable ({_exc}).") from None


def _remove_own_metrics_dir() -> None:
    if _OWN_METRICS_DIR and os.getpid() == _MASTER_PID:  # forked workers inherit atexit handlers: not theirs
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


atexit.register(_remove_own_metrics_dir)  # also after a failed start, when gunicorn's on_exit never runs
# Room for every worker and the master, checked by allocating it: a full tmpfs later would mean SIGBUS.
_problem = metrics_space.check(METRICS_DIR, workers + 1)
if _problem:
    raise _cannot_start(_problem)
try:
    metrics_space.reserve(METRICS_DIR, os.getpid())  # the master writes metrics too (the app is preloaded)
except OSError as _exc:
    raise _cannot_start(f"the metrics directory {METRICS_DIR} is unusable ({_exc.strerror or _exc}).") from None


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
