"""service/ never imports model/, Keras or TensorFlow: read from every module's syntax tree, then seen at run time.

The data flows one way (contract -> model -> artifact -> service): the serving code and image hold NumPy only.
The static check reads `import`, `from ... import` and the string given to `importlib.import_module(...)` or
`__import__(...)`, so an import hidden behind importlib is caught too (a regex over `import` lines was not).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.performances import app_csv
from devtools.random_weights import write_random_artifact
from robojam_format.layout import REPO_ROOT

FORBIDDEN = ("model", "keras", "tensorflow")
SERVICE_MODULES = sorted((REPO_ROOT / "service").rglob("*.py"))
PERF = app_csv([(0.05 * i, 0.3 + 0.01 * i, 0.5, 20.0, int(i > 0)) for i in range(40)])


def imported_modules(source: str) -> set[str]:
    """Every absolute module name `source` imports, statically or by a literal importlib/__import__ call."""
    tree = ast.parse(source)
    loaders = {"import_module", "__import__"}  # plus any alias of importlib.import_module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "importlib":
            loaders.update(alias.asname or alias.name for alias in node.names if alias.name == "import_module")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in loaders and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def forbidden(names: set[str]) -> list[str]:
    return sorted(name for name in names if name.split(".")[0] in FORBIDDEN)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import tensorflow as tf", ["tensorflow"]),
        ("from keras import layers", ["keras"]),
        ("from model.export import export_artifact", ["model.export"]),
        ("import importlib\ntf = importlib.import_module('tensorflow')", ["tensorflow"]),
        ("from importlib import import_module as load\nm = load('model.mdrnn')", ["model.mdrnn"]),
        ("k = __import__('keras.utils')", ["keras.utils"]),
        ("def f():\n    import keras\n", ["keras"]),
        ("import numpy as np\nfrom service import settings\nfrom . import engine", []),
        ("import modelling, kerasy", []),
    ],
)
def test_the_import_reader_sees_every_form(source, found):
    assert forbidden(imported_modules(source)) == found


def test_no_service_module_imports_model_keras_or_tensorflow():
    assert len(SERVICE_MODULES) >= 10  # the check reads the real package
    offenders = {
        str(path.relative_to(REPO_ROOT)): bad
        for path in SERVICE_MODULES
        if (bad := forbidden(imported_modules(path.read_text(encoding="utf-8"))))
    }
    assert offenders == {}


def test_loading_the_engine_imports_no_framework():
    code = (
        "import sys, numpy as np; from service.engine import Engine; import service.weights; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'model')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_serving_import_graph_has_no_tensorflow(tmp_path):
    """A fresh interpreter builds the app, answers a request and has not imported tensorflow, keras or model/
    (not even through robojam_format, which the static check above does not read)."""
    weights = write_random_artifact(tmp_path / "w.npz", units=16, mixtures=2)
    code = f"""
import json, sys
import service.gunicorn_conf, service.healthcheck
from service.app import create_app
app = create_app({{"ROBOJAM_WEIGHTS": {str(weights)!r}}})
reply = app.test_client().post("/api/predict", json={{"perf": {PERF!r}}})
assert reply.status_code == 200, reply.get_data()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "model", "numpy"))))
"""
    env = {"PATH": str(Path(sys.executable).parent), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert "numpy" in modules  # the check sees real imports
    assert [m for m in modules if not m.startswith("numpy")] == []
