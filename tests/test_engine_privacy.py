"""No module outside service/engine.py uses a private engine name: the engine's API is its public names
(`Engine`, `BatchState`, `Request`, `Sampler`, their public methods and attributes, the module's constants).

Read from syntax trees (`ast`), in every package of the repo: `from service.engine import _x` (relative forms
included), `service.engine._x` through any name bound to the module, `getattr(obj, "_x")` and its siblings, and any
attribute `obj._x` whose name is one of the engine's own private names (its module's `_functions` and `_Classes`,
its classes' `_methods` and `self._attributes`). An attribute is matched by its name, not its object's type, so the
engine's private names are kept distinct from the rest of the repo's.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from robojam_format.layout import REPO_ROOT

ENGINE = REPO_ROOT / "service" / "engine.py"
PACKAGES = ("service", "tests", "benchmarks", "staging", "infra", "model", "robojam_format", "policy", "devtools")
SKIPPED = {"venv", ".venv", "site-packages", "__pycache__", "build"}
ATTRIBUTE_FUNCTIONS = {"getattr", "setattr", "hasattr", "delattr"}


def is_private(name: str) -> bool:
    return name.startswith("_") and len(name) > 1 and not (name.startswith("__") and name.endswith("__"))


def private_names(source: str) -> set[str]:
    """The private names a module defines: functions, classes, methods, and names and attributes it assigns."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {name for name in names if is_private(name)}


def imported_module(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of a `from ... import`, relative forms resolved against the importing package."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
    return ".".join([*parts, *([node.module] if node.module else [])])


def engine_uses(source: str, private: set[str], package: str = "") -> list[str]:
    """Each use of a private engine name in `source`, as `line: name`."""
    tree = ast.parse(source)
    aliases = set()  # names bound to the service.engine module itself
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "service.engine":
                    aliases.add(alias.asname or "service.engine")
        elif isinstance(node, ast.ImportFrom):
            module = imported_module(node, package)
            for alias in node.names:
                if module == "service" and alias.name == "engine":
                    aliases.add(alias.asname or "engine")
                elif module == "service.engine" and is_private(alias.name):
                    found.append(f"{node.lineno}: {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            if node.attr in private or ast.unparse(node.value) in aliases:
                found.append(f"{node.lineno}: {node.attr}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ATTRIBUTE_FUNCTIONS:
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value in private:
                found.append(f"{node.lineno}: {name.value}")
    return sorted(set(found), key=lambda use: int(use.split(":")[0]))


def scanned_modules() -> list[Path]:
    paths = []
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            if path != ENGINE and not SKIPPED & set(path.relative_to(REPO_ROOT).parts):
                paths.append(path)
    return sorted(paths)


PRIVATE = private_names(ENGINE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("source", "package", "found"),
    [
        ("from service.engine import Engine, _RowViews", "tests", ["1: _RowViews"]),
        ("from .engine import _frozen", "service", ["1: _frozen"]),
        ("from . import engine\nengine._gates_into(a, b, 4)", "service", ["2: _gates_into"]),
        ("import service.engine as e\nx = e._anything", "", ["2: _anything"]),
        ("import service.engine\nservice.engine._frozen(w)", "", ["2: _frozen"]),
        ("w = model._stacked[0]\nmodel._step(views)", "", ["1: _stacked", "2: _step"]),
        ("getattr(engine, '_head_bias')", "", ["1: _head_bias"]),
        ("from service.engine import Engine\nEngine.load().weight_arrays()", "", []),
        ("self._lock = threading.Lock()\nobj.__class__", "", []),
        ("from staging.engine import _helper\nfrom .engine import _x", "staging", []),
    ],
)
def test_the_reader_sees_every_form_of_use(source, package, found):
    assert engine_uses(source, PRIVATE, package) == found


def test_the_engine_private_names_are_read_from_the_engine():
    assert {"_stacked", "_step", "_head_into", "_RowViews", "_frozen", "_row"} <= PRIVATE
    assert all(is_private(name) for name in PRIVATE)


def test_no_module_outside_the_engine_uses_a_private_engine_name():
    modules = scanned_modules()
    assert {"service", "tests", "benchmarks", "staging", "infra", "model"} <= {
        path.relative_to(REPO_ROOT).parts[0] for path in modules
    }
    offenders = {}
    for path in modules:
        relative = path.relative_to(REPO_ROOT)
        package = ".".join(relative.parts[:-1])
        if uses := engine_uses(path.read_text(encoding="utf-8"), PRIVATE, package):
            offenders[str(relative)] = uses
    assert offenders == {}
