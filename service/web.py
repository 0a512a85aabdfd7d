"""GET /: the browser client (plain HTML/CSS/JS in service/static, no build step), served by the service itself.

Being same-origin, the page works on every target and behind any proxy in front of the service. Its
Content-Security-Policy allows scripts, styles, images and requests from this origin only (no inline code, no
CDN, no fonts from elsewhere), and every file goes out with `nosniff` so a browser never guesses a type.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

bp = Blueprint("web", __name__)


@bp.after_request
def _security_headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


@bp.get("/")
def page():
    """The play page."""
    return send_from_directory(STATIC_DIR, "index.html", max_age=0)


@bp.get("/static/<path:filename>")
def static(filename: str):
    """The page's scripts, styles and icon (a missing file is the service's JSON 404)."""
    return send_from_directory(STATIC_DIR, filename, max_age=0)
