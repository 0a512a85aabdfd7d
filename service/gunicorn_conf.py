"""gunicorn settings for RoboJam, every one overridable by a ROBOJAM_* environment variable (service.settings).

    gunicorn -c service/gunicorn_conf.py 'service.app:create_app()'

The app is preloaded in the master, so the weights are read once and shared copy-on-write by all workers.
Metrics run in prometheus-client's multiprocess mode: this module points PROMETHEUS_MULTIPROC_DIR at a fresh
directory before the app (and prometheus_client) is imported, and drops a worker's live gauges when it exits.
Stdlib (and the stdlib-only service.settings) at import time, so the file loads before anything else.
"""

from __future__ import annotations

import shutil

from service import settings

_listen = settings.listen()
_listen.check_tls()  # as the original server served HTTPS on :5000: both files or neither
_server = settings.server()

bind = _listen.addresses
certfile = _listen.certfile
keyfile = _listen.keyfile
workers = _server.workers
worker_class = "service.worker.JsonErrorThreadWorker"  # gthread, JSON for HTTP-level errors
threads = _server.threads
timeout = _server.timeout
graceful_timeout = _server.graceful_timeout
keepalive = _server.keepalive
max_requests = _server.max_requests
max_requests_jitter = _server.max_requests_jitter
preload_app = _server.preload_app
worker_tmp_dir = _server.worker_tmp_dir
accesslog = _server.accesslog
errorlog = _server.errorlog
loglevel = _server.loglevel
proc_name = "robojam"
# gunicorn 24+ opens a control socket under $HOME by default: a non-root container user may have no writable
# home, and two servers on one machine would fight over the path. Nothing here uses it.
control_socket_disable = True

METRICS_DIR, _OWN_METRICS_DIR = settings.prepare_metrics_dir()


def post_worker_init(worker):
    """Start this worker's warm-up inference at once instead of on its first request."""
    from service.app import start_warm_up

    start_warm_up(worker.wsgi)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, METRICS_DIR)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
