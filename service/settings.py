"""Every setting of the service, read from the environment here and nowhere else, so a container is configured by
env alone and each variable has one parser.

- `from_env()`: the Flask app's config (`create_app(config)` overrides keys for one app; tests use that instead of
  mutating os.environ).
- `weights_path()`: where the weights are (ROBOJAM_WEIGHTS, else the shipped file); ROBOJAM_PRECISION (in the app
  config) how the engine computes with them.
- `batch_policy()`: the batching loop's knobs (`BatchPolicy`), also in the app config.
- `listen()`: the addresses and TLS files, shared by the gunicorn config and the container healthcheck.
- `gunicorn_settings()`: the rest of gunicorn's settings; `prepare_metrics_dir()`: prometheus-client's
  multiprocess directory.

Standard library only (plus the contract's paths), so gunicorn can load its config file before anything else.
Each bad value is refused with one sentence naming the variable.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from robojam_format.layout import SHIPPED_WEIGHTS

WEIGHTS_ENV = "ROBOJAM_WEIGHTS"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_ROWS = 2000
DEFAULT_BIND = "127.0.0.1:5000"
DEFAULT_MAX_BATCH = 32  # requests advanced together per iteration of the batching loop (1 turns batching off)
DEFAULT_BATCH_WAIT_MS = 2  # from idle, how long the loop waits for requests still being read to join
DEFAULT_QUEUE_COST = 6400  # admitted work per worker, in LSTM steps: about 32 typical requests
DEFAULT_QUEUE_MS = 500  # ... and no more than the batching loop gets through in this long at its measured speed
DEFAULT_MAX_ROW_SECONDS = 10_000  # rows x seconds: 2000 rows at 5 s, or 1000 rows at 10 s
DEFAULT_TIMEOUT = 30
DEFAULT_READ_TIMEOUT = 10  # seconds for a request's headers and body to arrive (service/worker.py)
DEFAULT_THREADS = 64  # request threads mostly wait on the batching loop; spares outlast slow clients
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
SHM = "/dev/shm"
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
PRECISIONS = ("fp32", "int8")  # ROBOJAM_PRECISION: the engine's arithmetic; int8 is opt-in (service/int8_kernels.py)


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    """A string setting (unset or blank: `default`)."""
    return env.get(name, "").strip() or default


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    """An integer setting from `env` (unset or blank: `default`), refused below `minimum` with one sentence."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}.") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices` (case ignored; unset or blank: `default`), anything else refused with one sentence."""
    raw = env_str(env, name, default).lower()
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}.")
    return raw


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean setting: 1/0, true/false, yes/no, on/off (unset or blank: `default`)."""
    raw = env_str(env, name, "1" if default else "0").lower()
    if raw not in TRUE + FALSE:
        raise ValueError(f"{name} must be a boolean (1/0, true/false), got {raw!r}.")
    return raw in TRUE


def _origins(raw: str | None) -> list[str]:
    """Comma-separated origins; unset means any origin ('*'), an empty string turns CORS off."""
    if raw is None:
        return ["*"]
    return [origin.strip() for origin in raw.split(",") if origin.strip()]


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pin_blas_threads(env: dict[str, str] | None = None) -> None:
    """One BLAS thread per process unless the operator says otherwise; must run before NumPy is imported.

    Workers are one per CPU already, so more BLAS threads only contend (measured: +63 % req/s with one thread on
    2 vCPU at 16 clients).
    """
    env = os.environ if env is None else env
    for name in BLAS_THREAD_VARIABLES:
        env.setdefault(name, "1")


def weights_path(env: Mapping[str, str] | None = None) -> Path:
    """The weights artifact to serve: $ROBOJAM_WEIGHTS, else the shipped weights."""
    return Path(_environ(env).get(WEIGHTS_ENV) or SHIPPED_WEIGHTS)


def from_env(env: Mapping[str, str] | None = None) -> dict:
    """Flask config keys built from the environment (docs/api.md lists the variables)."""
    env = _environ(env)
    return {
        "ROBOJAM_WEIGHTS": weights_path(env),
        "ROBOJAM_PRECISION": env_choice(env, "ROBOJAM_PRECISION", PRECISIONS, PRECISIONS[0]),
        "ROBOJAM_CORS_ORIGINS": _origins(env.get("ROBOJAM_CORS_ORIGINS")),
        "ROBOJAM_MAX_ROWS": env_int(env, "ROBOJAM_MAX_ROWS", DEFAULT_MAX_ROWS),
        "MAX_CONTENT_LENGTH": env_int(env, "ROBOJAM_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        # Set by the gunicorn config (prepare_metrics_dir) before the app loads: /metrics sums over workers.
        "ROBOJAM_METRICS_DIR": env.get(METRICS_ENV) or None,
        "ROBOJAM_BATCH_POLICY": batch_policy(env),
        "ROBOJAM_QUEUE_COST": env_int(env, "ROBOJAM_QUEUE_COST", DEFAULT_QUEUE_COST),
        "ROBOJAM_QUEUE_MS": env_int(env, "ROBOJAM_QUEUE_MS", DEFAULT_QUEUE_MS),
        "ROBOJAM_MAX_ROW_SECONDS": env_int(env, "ROBOJAM_MAX_ROW_SECONDS", DEFAULT_MAX_ROW_SECONDS),
        "ROBOJAM_RATE_LIMIT": env_int(env, "ROBOJAM_RATE_LIMIT", 0, minimum=0),
        "ROBOJAM_RATE_BURST": env_int(env, "ROBOJAM_RATE_BURST", 10),
        "ROBOJAM_TRUSTED_PROXIES": frozenset(
            address.strip() for address in env.get("ROBOJAM_TRUSTED_PROXIES", "").split(",") if address.strip()
        ),
        "ROBOJAM_TIMEOUT": env_int(env, "ROBOJAM_TIMEOUT", DEFAULT_TIMEOUT),
    }


@dataclass(frozen=True)
class BatchPolicy:
    """The batching loop's knobs (service/batcher.py), in one place."""

    max_batch: int = DEFAULT_MAX_BATCH  # requests advanced together per iteration; 1 runs each alone, in turn
    wait_seconds: float = DEFAULT_BATCH_WAIT_MS / 1000  # from idle, the wait for requests still being read

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}.")
        if not self.wait_seconds >= 0:
            raise ValueError(f"wait_seconds must be at least 0, got {self.wait_seconds}.")

    @property
    def batched(self) -> bool:
        """Whether requests share iterations at all (max_batch 1 turns batching off)."""
        return self.max_batch > 1


def batch_policy(env: Mapping[str, str] | None = None) -> BatchPolicy:
    """ROBOJAM_MAX_BATCH and ROBOJAM_BATCH_WAIT_MS."""
    env = _environ(env)
    return BatchPolicy(
        max_batch=env_int(env, "ROBOJAM_MAX_BATCH", DEFAULT_MAX_BATCH),
        wait_seconds=env_int(env, "ROBOJAM_BATCH_WAIT_MS", DEFAULT_BATCH_WAIT_MS, minimum=0) / 1000,
    )


def read_timeout(env: Mapping[str, str] | None = None) -> int:
    """ROBOJAM_READ_TIMEOUT: seconds a request's headers and body may take to arrive (service/worker.py)."""
    return env_int(_environ(env), "ROBOJAM_READ_TIMEOUT", DEFAULT_READ_TIMEOUT)


# ---- where the server listens (gunicorn and the healthcheck) ------------------------------------------------


@dataclass(frozen=True)
class Listen:
    """The addresses gunicorn binds and its TLS files (both or neither)."""

    addresses: list[str]
    certfile: str | None
    keyfile: str | None

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"

    def check_tls(self) -> None:
        """Both TLS files or neither, and each one present; else one sentence."""
        if bool(self.certfile) != bool(self.keyfile):
            raise ValueError("set both ROBOJAM_CERTFILE and ROBOJAM_KEYFILE for TLS, or neither.")
        for path in (self.certfile, self.keyfile):
            if path and not os.path.isfile(path):
                raise ValueError(f"TLS file not found: {path}.")


def listen(env: Mapping[str, str] | None = None) -> Listen:
    """ROBOJAM_BIND (comma-separated addresses) and ROBOJAM_CERTFILE / ROBOJAM_KEYFILE, parsed once for all."""
    env = _environ(env)
    addresses = [address.strip() for address in env_str(env, "ROBOJAM_BIND", DEFAULT_BIND).split(",")]
    return Listen(
        addresses=[address for address in addresses if address] or [DEFAULT_BIND],
        certfile=env.get("ROBOJAM_CERTFILE") or None,
        keyfile=env.get("ROBOJAM_KEYFILE") or None,
    )


# ---- the rest of gunicorn's settings ------------------------------------------------------------------------


def writable_dir(path: str) -> bool:
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


@dataclass(frozen=True)
class GunicornSettings:
    """gunicorn's process, timing and logging settings (names as gunicorn's); where it listens is `Listen`."""

    workers: int
    threads: int
    timeout: int
    graceful_timeout: int
    keepalive: int
    max_requests: int
    max_requests_jitter: int
    preload_app: bool
    worker_tmp_dir: str
    accesslog: str
    errorlog: str
    loglevel: str


def gunicorn_settings(env: Mapping[str, str] | None = None) -> GunicornSettings:
    """The ROBOJAM_* variables for gunicorn's workers, threads, timeouts and logs."""
    env = _environ(env)
    # The heartbeat file is touched constantly; on a disk-backed /tmp that can stall workers, so prefer tmpfs.
    tmp_dir = SHM if writable_dir(SHM) else tempfile.gettempdir()
    return GunicornSettings(
        workers=env_int(env, "ROBOJAM_WORKERS", default_workers(), minimum=1),
        threads=env_int(env, "ROBOJAM_THREADS", DEFAULT_THREADS, minimum=1),
        timeout=env_int(env, "ROBOJAM_TIMEOUT", DEFAULT_TIMEOUT, minimum=1),
        graceful_timeout=env_int(env, "ROBOJAM_GRACEFUL_TIMEOUT", 30, minimum=1),
        keepalive=env_int(env, "ROBOJAM_KEEPALIVE", 5, minimum=0),
        max_requests=env_int(env, "ROBOJAM_MAX_REQUESTS", 0, minimum=0),
        max_requests_jitter=env_int(env, "ROBOJAM_MAX_REQUESTS_JITTER", 0, minimum=0),
        preload_app=env_bool(env, "ROBOJAM_PRELOAD", True),
        worker_tmp_dir=env_str(env, "ROBOJAM_WORKER_TMP_DIR", tmp_dir),
        accesslog=env_str(env, "ROBOJAM_ACCESS_LOG", "-"),
        errorlog=env_str(env, "ROBOJAM_ERROR_LOG", "-"),
        loglevel=env_str(env, "ROBOJAM_LOG_LEVEL", "info"),
    )


# ---- prometheus-client's multiprocess directory -------------------------------------------------------------

_CREATED_MARKER, _PREPARED_MARKER = "ROBOJAM_CREATED_METRICS_DIR", "ROBOJAM_PREPARED_METRICS_DIR"


def prepare_metrics_dir(env: dict[str, str] | None = None) -> tuple[str, bool]:
    """Point PROMETHEUS_MULTIPROC_DIR at a clean directory, before prometheus_client is imported: (path, own).

    An operator-given directory is emptied of stale files; otherwise a private one is made (on tmpfs when
    possible) and `own` is True (the caller removes it at exit). The marker variables keep this to the first call
    in a process tree (gunicorn re-reads its config on SIGHUP while workers are still writing there).
    """
    env = os.environ if env is None else env
    if not env.get(METRICS_ENV):
        created = tempfile.mkdtemp(prefix="robojam-metrics-", dir=SHM if writable_dir(SHM) else None)
        env[METRICS_ENV] = env[_CREATED_MARKER] = created
    directory = env[METRICS_ENV]
    if env.get(_PREPARED_MARKER) != directory:
        os.makedirs(directory, exist_ok=True)
        for stale in glob.glob(os.path.join(directory, "*.db")):
            os.remove(stale)
        env[_PREPARED_MARKER] = directory
    return directory, directory == env.get(_CREATED_MARKER)
