"""The app's settings, read from ROBOJAM_* environment variables so a container is configured by env alone.

`create_app(config)` overrides any of these keys for one app (tests use that instead of mutating os.environ).
"""

from __future__ import annotations

import os

DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_ROWS = 2000
DEFAULT_MAX_BATCH = 32  # requests advanced together per iteration (1 turns batching off)
DEFAULT_BATCH_WAIT_MS = 2
DEFAULT_QUEUE_COST = 6400  # admitted work per worker in LSTM steps: about 32 typical requests
DEFAULT_MAX_ROW_SECONDS = 10_000  # rows x seconds: 2000 rows at 5 s, or 1000 rows at 10 s
DEFAULT_TIMEOUT = 30
DEFAULT_READ_TIMEOUT = 10  # seconds for a request's headers and body to arrive (service/worker.py)


def env_int(env, name: str, default: int, minimum: int = 1) -> int:
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


def _origins(raw: str | None) -> list[str]:
    """Comma-separated origins; unset means any origin ('*'), an empty string turns CORS off."""
    if raw is None:
        return ["*"]
    return [origin.strip() for origin in raw.split(",") if origin.strip()]


def from_env(env: dict | None = None) -> dict:
    """Flask config keys built from the environment (see the README's API section for the variables)."""
    env = os.environ if env is None else env
    return {
        # None lets service.artifact resolve ROBOJAM_WEIGHTS itself, falling back to the shipped file.
        "ROBOJAM_WEIGHTS": env.get("ROBOJAM_WEIGHTS") or None,
        "ROBOJAM_CORS_ORIGINS": _origins(env.get("ROBOJAM_CORS_ORIGINS")),
        "ROBOJAM_MAX_ROWS": env_int(env, "ROBOJAM_MAX_ROWS", DEFAULT_MAX_ROWS),
        "MAX_CONTENT_LENGTH": env_int(env, "ROBOJAM_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        "ROBOJAM_MAX_BATCH": env_int(env, "ROBOJAM_MAX_BATCH", DEFAULT_MAX_BATCH),
        "ROBOJAM_BATCH_WAIT_MS": env_int(env, "ROBOJAM_BATCH_WAIT_MS", DEFAULT_BATCH_WAIT_MS, minimum=0),
        "ROBOJAM_QUEUE_COST": env_int(env, "ROBOJAM_QUEUE_COST", DEFAULT_QUEUE_COST),
        "ROBOJAM_MAX_ROW_SECONDS": env_int(env, "ROBOJAM_MAX_ROW_SECONDS", DEFAULT_MAX_ROW_SECONDS),
        "ROBOJAM_RATE_LIMIT": env_int(env, "ROBOJAM_RATE_LIMIT", 0, minimum=0),
        "ROBOJAM_RATE_BURST": env_int(env, "ROBOJAM_RATE_BURST", 10),
        "ROBOJAM_TRUSTED_PROXIES": frozenset(
            address.strip() for address in env.get("ROBOJAM_TRUSTED_PROXIES", "").split(",") if address.strip()
        ),
        "ROBOJAM_TIMEOUT": env_int(env, "ROBOJAM_TIMEOUT", DEFAULT_TIMEOUT),
        "ROBOJAM_READ_TIMEOUT": env_int(env, "ROBOJAM_READ_TIMEOUT", DEFAULT_READ_TIMEOUT),
    }
