"""Every relative link and image in the README and the guides points at a file or folder that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from robojam_format.layout import REPO_ROOT

DOCS = sorted(
    [REPO_ROOT / "README.md", REPO_ROOT / "DEVELOPERS.md", REPO_ROOT / "benchmarks" / "README.md"]
    + list((REPO_ROOT / "docs").glob("*.md"))
    + list((REPO_ROOT / "model").glob("*.md"))
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(path: Path) -> list[str]:
    """The targets of `[text](target)` and `![alt](target)` that are files in this repository (anchors dropped)."""
    targets = (m.group(1).split("#", 1)[0] for m in LINK.finditer(path.read_text(encoding="utf-8")))
    return [t for t in targets if t and not re.match(r"^[a-z]+:", t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_points_at_something_that_exists(doc):
    missing = [t for t in relative_links(doc) if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(REPO_ROOT)} links to missing {missing}"


def test_the_readme_links_every_guide():
    linked = {(REPO_ROOT / t).resolve() for t in relative_links(REPO_ROOT / "README.md")}
    guides = set((REPO_ROOT / "docs").glob("*.md")) | {REPO_ROOT / "benchmarks" / "README.md"}
    assert {g.resolve() for g in guides} <= linked


def test_links_are_found_and_web_addresses_and_anchors_are_not_files(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("[a](docs/api.md) ![b](play.png) [c](https://example.org/x) [d](#top) [e](api.md#errors)\n")
    assert relative_links(doc) == ["docs/api.md", "play.png", "api.md"]
