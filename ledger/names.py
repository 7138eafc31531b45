"""Names and other text a person types that creditbot stores (agent, account and API key
names, reasons, Slack ids): one check for all of them, wherever they enter.

Refused: control characters (NUL, newlines, tabs, DEL, C1), lone surrogates, line and
paragraph separators, and invisible formatting characters such as bidi overrides that
make a name read as something else. PostgreSQL cannot store NUL at all; the rest would
corrupt a Slack message, a CSV export or a terminal. Joiners that emoji and some scripts
need (ZWJ, ZWNJ, emoji tag characters) are allowed.
"""

from __future__ import annotations

import unicodedata

from ledger.errors import InvalidInput

#: Format characters that are part of ordinary text: the zero-width (non-)joiner.
_JOINERS = frozenset("\u200c\u200d")
_REFUSED = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _refused(ch: str) -> bool:
    category = unicodedata.category(ch)
    if category in _REFUSED:
        return True
    # Emoji tag sequences (subdivision flags) use the tag block U+E0020-U+E007F.
    return category == "Cf" and ch not in _JOINERS and not "\U000e0020" <= ch <= "\U000e007f"


def refused_character(text: str) -> str | None:
    """The first character `check_text` refuses in `text`, as 'U+0000', or None."""
    for ch in text:
        if _refused(ch):
            return f"U+{ord(ch):04X}"
    return None


def check_text(text: object, *, what: str, max_length: int, required: bool = True) -> str:
    """`text` stripped of surrounding spaces, or a clear InvalidInput naming `what` ('An
    agent's name'): empty when `required`, longer than `max_length`, not a string, or with
    a character this module refuses."""
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be text.")
    found = refused_character(text)
    if found is not None:
        raise InvalidInput(
            f"{what} cannot contain control or invisible formatting characters ({found})."
        )
    stripped = text.strip()
    if required and not stripped:
        raise InvalidInput(f"{what} cannot be empty.")
    if len(stripped) > max_length:
        raise InvalidInput(f"{what} is at most {max_length} characters.")
    return stripped


def check_name(text: object, *, what: str, max_length: int = 100) -> str:
    """A name: `check_text`, required."""
    return check_text(text, what=what, max_length=max_length)


def without_refused(text: str) -> str:
    """`text` with the characters `check_text` refuses taken out: for names another system
    gave us (a Slack workspace's name at install), which nobody can retype."""
    return "".join(ch for ch in text if not _refused(ch))
