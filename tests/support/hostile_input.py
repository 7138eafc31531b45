"""Text a hostile or careless person types where an amount or a name is expected: each one
must get the parser's or the validator's own clear error, never a traceback."""

from __future__ import annotations

#: Not amounts (issue 10 item 13): special values, huge numbers, digits that are not ASCII,
#: separators in the wrong places, another currency's symbol (on a USD account), controls.
NOT_AMOUNTS = (
    "Infinity",
    "-Infinity",
    "NaN",
    "sNaN",
    "1" + "0" * 30,  # 10^30
    "10000000000000000000",  # 10^19
    "²",  # str.isdigit() says yes
    "٣",  # an Arabic-Indic digit
    "５０",  # full-width digits
    "1,0,0",  # was read as 100
    "€50",
    "1e3",
    "0x10",
    "5\x00",
    "9" * 60,
)

#: Not names (issue 10 item 15): NUL and other control characters, bidi overrides,
#: a lone surrogate (JSON's "\ud800"), line separators.
NOT_NAMES = (
    "agent\x00",
    "\x00",
    "bad\nname",
    "tab\there",
    "bell\x07",
    "del\x7f",
    "c1\x85",
    "rtl\u202eevil",
    "iso\u2066late",
    "line\u2028sep",
    "lone\ud800",
)
