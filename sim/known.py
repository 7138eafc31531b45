"""Defects the simulation finds in code someone else is changing right now (see
docs/simulation.md). A run tolerates each (it is counted and named in the summary) unless
it is strict; a strict run of the defect's seed is kept as an xfail test, so the test
starts passing, and says so, when the fix lands. Remove an entry once its fix is merged."""

from __future__ import annotations

import re

#: id -> (what it is, a pattern of the error or violation it shows as).
KNOWN_DEFECTS: dict[str, tuple[str, re.Pattern[str]]] = {}


def known_defect(error: str) -> str | None:
    for name, (_, pattern) in KNOWN_DEFECTS.items():
        if pattern.search(error):
            return name
    return None
