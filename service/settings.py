"""The app's settings, read from ROBOJAM_* environment variables so a container is configured by env alone.

`create_app(config)` overrides any of these keys for one app (tests use that instead of mutating os.environ).
"""

from __future__ import annotations

import os

DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_MAX_ROWS = 2000


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
    }
