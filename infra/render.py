"""Render the files the program ships to machines (startup script, cloud-init) from infra/templates/.

Jinja2 with StrictUndefined: a missing value is an error, not an empty string. `| q` shell-quotes a value;
`| tojson` makes a YAML-safe scalar (JSON is YAML).
"""

from __future__ import annotations

import pathlib
import shlex

import jinja2

TEMPLATE_DIR = pathlib.Path(__file__).resolve().parent / "templates"

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # shell and YAML, not HTML
    comment_start_string="{##",  # so shell's ${#array[@]} is not read as a Jinja comment
    comment_end_string="##}",
)
_ENV.filters["q"] = lambda value: shlex.quote(str(value))


def template_text(name: str) -> str:
    """A file from infra/templates/ as it is (a plain script that also runs outside this program)."""
    return (TEMPLATE_DIR / name).read_text()


def render(name: str, **values) -> str:
    """Render one template from infra/templates/ with the given values."""
    return _ENV.get_template(name).render(**values)
