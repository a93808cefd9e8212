"""Links from an invariant to the runbook heading it enforces, as GitHub renders the document.

The runbook lives on GitHub; a heading's anchor is GitHub's slug of its text (lower case,
punctuation dropped, each space a hyphen, ``-1``, ``-2``… for repeated headings). The link
base (``contract.runbook_url``) and the document's outline (``contract.runbook_headings``:
every heading, ``"## Text"``, in document order) come from runbook.toml, so the links follow
the document a deployment actually keeps; tests/test_report_units.py proves the outline and
every invariant's anchor against the real runbook (the outline is read from the markdown by
fixtures.runbook_doc.outline_of).

An invariant's section (``"Incident Response Scenarios › Scenario 2 › Case 3"``) is walked
down the outline: each segment names a heading below the previous one (equal to its text,
or a prefix of it ending at a word boundary: "Scenario 2" names "Scenario 2: /health/deep
Returns 503 CRITICAL"); the link points at the deepest heading named ("Case 3" is bold text,
not a heading). Without an outline the link points at the section's first segment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
# GitHub (github-slugger) drops every character that is not a letter, digit, underscore,
# hyphen or space; Python's \w is Unicode-aware like its letter classes.
_NOT_SLUG = re.compile(r"[^\w\- ]")


def github_slug(text: str) -> str:
    return _NOT_SLUG.sub("", text.strip().lower()).replace(" ", "-")


def parse_heading(line: str) -> tuple[int, str] | None:
    """``"## Text"`` -> (2, "Text"); None for anything else."""
    m = _HEADING.match(line)
    return (len(m.group(1)), m.group(2)) if m else None


def slugs(outline: Sequence[str]) -> list[str]:
    """Each heading's anchor, in order, with GitHub's suffix for repeated slugs."""
    seen: dict[str, int] = {}
    out = []
    for entry in outline:
        parsed = parse_heading(entry)
        slug = github_slug(parsed[1] if parsed else entry)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.append(slug if n == 0 else f"{slug}-{n}")
    return out


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _names(heading: str, segment: str) -> bool:
    h, s = _norm(heading), _norm(segment)
    return bool(s) and (h == s or (h.startswith(s) and not h[len(s)].isalnum()))


def deepest_heading(section: str, outline: Sequence[str]) -> int | None:
    """Index in ``outline`` of the deepest heading the section's segments name, in order."""
    parsed = [parse_heading(e) or (1, e) for e in outline]
    lo, hi, best = 0, len(parsed), None
    for segment in (s.strip() for s in section.split("›")):
        found = next((i for i in range(lo, hi) if _names(parsed[i][1], segment)), None)
        if found is None:
            break
        best, level = found, parsed[found][0]
        lo = found + 1
        hi = next((j for j in range(lo, len(parsed)) if parsed[j][0] <= level), len(parsed))
    return best


def anchor(section: str, outline: Sequence[str]) -> str:
    """The anchor of the runbook heading a section names (see the module's docstring)."""
    found = deepest_heading(section, outline) if outline else None
    if found is None:
        return github_slug(section.split("›")[0])
    return slugs(outline)[found]
