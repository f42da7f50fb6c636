"""Sections of a docs page that a benchmark owns, between HTML comment markers, rewritten without touching the rest."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["RELIABILITY", "markers", "write_section"]

RELIABILITY = Path(__file__).parent.parent / "docs" / "reliability.md"


def markers(name: str, script: str) -> tuple[str, str]:
    """The opening and closing markers of the section ``name`` that ``script`` writes."""
    return f"<!-- {name}: written by {script} -->", f"<!-- /{name} -->"


def write_section(name: str, script: str, body: str, doc: Path = RELIABILITY) -> None:
    """Put ``body`` between the section's markers in ``doc`` (added at the end the first time)."""
    begin, end = markers(name, script)
    section = f"{begin}\n{body.strip()}\n{end}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Reliability\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), flags=re.DOTALL)
    found = pattern.search(text)
    text = pattern.sub(lambda _: section, text) if found else text.rstrip("\n") + "\n\n" + section
    doc.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
