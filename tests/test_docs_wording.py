"""Docstrings and docs give reasons, papers or links, never "the issue" as an authority.

A reader of the package has no issue tracker at hand: "as the issue asks" or
"the issue's budget" says nothing to them (project standard, README).
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: "the issue", "the issue's", "as the issue asks" (not "issues" in links or "issues 60 operations")
CITED = re.compile(r"\bthe issue\b|\bissue's\b|\bissue asks\b", re.IGNORECASE)


def _texts():
    yield from sorted((ROOT / "lodetools").rglob("*.py"))
    yield from sorted((ROOT / "docs").rglob("*.md"))
    yield ROOT / "README.md"


def test_no_issue_cited_as_authority():
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in _texts()
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if CITED.search(line)]
    assert not found, "\n".join(found)


def test_the_pattern_finds_citations():
    assert CITED.search("the bug is fixed, as the issue asks")
    assert CITED.search("0.43 of the issue's 60 s budget")
    assert not CITED.search("the torch version issues some 60 tensor operations; see github.com/x/y/issues/3")
