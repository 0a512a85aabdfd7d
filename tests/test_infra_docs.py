"""docs/deploy.md: its config-key table is the generated one, and it lists every key with its targets and default."""

from __future__ import annotations

import re

from infra import docs
from infra.stack_config import KEYS, targets_reading


def test_the_deploy_docs_key_table_is_the_generated_one():
    text = docs.DEPLOY_DOC.read_text()
    assert docs.with_key_table(text) == text, "docs/deploy.md's key table is stale: run `python -m infra.docs`"


def test_the_generated_table_lists_exactly_the_config_keys_with_their_targets_and_defaults():
    rows = [line for line in docs.key_table().splitlines() if re.match(r"^\| `[a-z]+:[A-Za-z]+` \|", line)]
    documented = {re.match(r"^\| `([^`]+)`", row).group(1): row for row in rows}
    assert set(documented) == {key.name for key in KEYS} and len(rows) == len(KEYS)
    for key in KEYS:
        row = documented[key.name]
        assert row.split(" | ")[1] == ", ".join(targets_reading(key)), key.name
        if key.default not in (None, "", []):
            default = str(key.default).lower() if isinstance(key.default, bool) else str(key.default)
            assert f"`{default}`" in row, (key.name, default)


def test_rewriting_replaces_only_the_block_between_the_markers():
    stale = f"before\n{docs.BEGIN}\n| old |\n{docs.END}\nafter\n"
    assert docs.with_key_table(stale) == f"before\n{docs.BEGIN}\n{docs.key_table()}\n{docs.END}\nafter\n"


def test_a_key_without_a_default_or_whose_parser_refuses_it_reads_required():
    cells = {row.split(" | ")[0].strip("| `"): row.split(" | ")[2] for row in docs.key_table().splitlines()[2:]}
    assert {name for name, default in cells.items() if default == "required"} == {
        key.name for key in KEYS if key.default is None
    } | {"robojam:sshKeys"}
    assert cells["robojam:reservedIp"] == "empty" and cells["robojam:spot"] == "`false`"
