"""service/gunicorn_compat.py, the one seam onto gunicorn's internals: the canary an upgrade trips, with one line."""

from __future__ import annotations

import ast

import gunicorn
import pytest
from gunicorn import util
from gunicorn.workers import base, gthread

from robojam_format.layout import REPO_ROOT
from service import gunicorn_compat


def test_the_installed_gunicorn_has_every_internal_the_worker_uses():
    line = gunicorn_compat.incompatibility()
    if line is not None:
        pytest.fail(line, pytrace=False)


@pytest.mark.parametrize(
    ("breakage", "phrase"),
    [
        (lambda mp: mp.setattr(gunicorn, "version_info", (28, 1, 0)), "a version it was not written for"),
        (lambda mp: mp.delattr(gthread, "_DEFER"), "_DEFER sentinel is gone"),
        (lambda mp: mp.setattr(util, "write_error", lambda sock, status: None), "util.write_error is not a function"),
        (lambda mp: mp.setattr(base.Worker, "handle_error", lambda *args: None), "no longer answers through"),
        (lambda mp: mp.delattr(gthread.TConn, "wait_for_data"), "TConn lacks initialized, data_ready"),
        (lambda mp: mp.delattr(util, "write_nonblock"), "write_nonblock is gone"),
    ],
)
def test_an_upgrade_that_breaks_an_internal_is_one_line_naming_the_module(monkeypatch, breakage, phrase):
    breakage(monkeypatch)
    line = gunicorn_compat.incompatibility()
    assert line is not None and "\n" not in line
    assert line.startswith("service/gunicorn_compat.py (written for gunicorn 25.2 to below 28.0) breaks on gunicorn")
    assert phrase in line


def test_only_the_compat_module_imports_gunicorn_in_the_service():
    """The worker and everything else reach gunicorn through the seam (gunicorn_conf.py is read by gunicorn and
    imports nothing of it)."""
    importers = []
    for path in sorted((REPO_ROOT / "service").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name.split(".")[0] == "gunicorn" for name in names):
                importers.append(path.name)
    assert sorted(set(importers)) == ["gunicorn_compat.py"]
