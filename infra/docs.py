"""`python -m infra.docs`: write docs/deploy.md's generated tables: the config keys and what changing each does.

The key table between its markers is `key_table()` (tests/test_infra_docs.py checks it); the change table is
`infra.changes.change_table()`, which plans every key's sample change (tests/test_infra_changes.py checks it).
"""

from __future__ import annotations

import pathlib
import sys

from infra.config import ConfigError, Key, default_string
from infra.stack_config import KEYS, targets_reading
from robojam_format.layout import REPO_ROOT

DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"
BEGIN = "<!-- begin generated: python -m infra.docs (config keys) -->"
END = "<!-- end generated -->"
CHANGES_BEGIN = "<!-- begin generated: python -m infra.docs (config changes) -->"


def _default(key: Key) -> str:
    """`value`, "empty", or "required" (no default, or one its own parser refuses, like an empty key list)."""
    shown = default_string(key)
    try:
        if key.default is None or key.parse is None or key.parse(key.name, shown) is None:
            return "required" if key.default is None else "empty"
    except ConfigError:
        return "required"
    return f"`{shown}`" if shown not in ("", "[]") else "empty"


def key_table() -> str:
    """One row per config key: the targets that read it (from the registry), its default and meaning."""
    rows = ["| key | targets | default | meaning |", "| --- | --- | --- | --- |"]
    for key in KEYS:
        meaning = key.meaning.replace("|", "\\|")
        rows.append(f"| `{key.name}` | {', '.join(targets_reading(key))} | {_default(key)} | {meaning} |")
    return "\n".join(rows)


def with_block(text: str, begin: str, table: str) -> str:
    """The document with the block between `begin` and the next end marker replaced by `table`."""
    head, found, rest = text.partition(begin)
    if not found or END not in rest:
        raise ValueError(f"{DEPLOY_DOC} has no {begin} ... {END} block")
    return head + begin + "\n" + table + "\n" + END + rest.split(END, 1)[1]


def with_key_table(text: str) -> str:
    """The document with the key table replaced by the current one."""
    return with_block(text, BEGIN, key_table())


def generated_block(text: str, begin: str) -> str:
    """The table a document holds between `begin` and the next end marker."""
    return text.split(begin, 1)[1].split(END, 1)[0].strip("\n")


def main(path: pathlib.Path = DEPLOY_DOC) -> int:
    from infra.changes import change_table

    text = path.read_text()
    updated = with_block(with_key_table(text), CHANGES_BEGIN, change_table())
    if updated != text:
        path.write_text(updated)
        print(f"updated {path.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
