"""Exact amounts: credits in milli-credits, money in minor units (cents). Never floats.

The two parsers here are the only way text becomes an amount, in the CLI, Slack and
anywhere else a person types one: `parse_credits` and `parse_money`. Both are bounded (a
length, a largest amount) and strict (ASCII digits, an optional point, commas only as
thousands separators, money's own currency symbol or code only); anything else raises
their own `AmountError` with a message fit to show a person, never another exception.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from functools import cache

from babel.numbers import get_currency_symbol

from ledger.currencies import Currency, all_currencies, currency
from ledger.errors import InvalidInput

#: One credit is stored as 1,000 milli-credits, so per-second call prices stay exact enough.
MILLI = 1000
#: Longest text taken as an amount: nobody types more.
MAX_TEXT = 40
#: Largest number of credits typed (a thousand billion): bigger is a typo.
MAX_CREDITS = 10**12
#: Largest amount of money typed, in whole units of the currency (a billion).
MAX_MONEY = 10**9


class AmountError(InvalidInput):
    """Text that is not an amount the parsers take. The message says why."""

    code = "invalid_amount"


# ASCII digits only: '²' and '٣' are digits to str.isdigit, not to a billing system.
_NUMBER = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+")
_LOOSE_NUMBER = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?")
_SPLIT = re.compile(r"(?P<pre>[^0-9.,]*?)\s*(?P<num>[0-9.,]+)\s*(?P<post>[^0-9.,]*)")
_MINUS = ("-", "\u2212", "\u2012", "\u2013", "\u2014")


def _shown(text: str) -> str:
    """The typed text as an error message quotes it (short, printable)."""
    clipped = text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
    return repr(clipped)


def _prepared(text: object, example: str) -> str:
    """The stripped text, refused when empty, too long, negative or not text at all."""
    if not isinstance(text, str):
        raise AmountError(f"Enter an amount, for example {example}.")
    raw = text.strip()
    if not raw:
        raise AmountError(f"Enter an amount, for example {example}.")
    if len(raw) > MAX_TEXT:
        raise AmountError(f"{_shown(raw)} is too long to be an amount.")
    if raw.startswith(_MINUS):
        raise AmountError(f"{raw} is negative: enter a positive amount.")
    return raw.removeprefix("+").lstrip()


def _decimal(num: str, raw: str, what: str) -> Decimal:
    """`num` (digits, commas, a point) as a Decimal, or the reason it is not one."""
    if not _NUMBER.fullmatch(num):
        if "," in num and _LOOSE_NUMBER.fullmatch(num):
            raise AmountError(f"{_shown(raw)} has misplaced thousands separators.")
        raise AmountError(f"{_shown(raw)} is not {what}.")
    return Decimal(num.replace(",", ""))


# --- credits ------------------------------------------------------------------------------


def parse_credits(text: str, *, whole: bool = False) -> int:
    """Credits a person typed ('500', '1,000', '2.5', '0.001') as milli-credits.

    At most 3 decimals (a milli-credit), or none with `whole`; zero is allowed (callers say
    when it is not); at most MAX_CREDITS. Anything else raises `AmountError`.
    """
    raw = _prepared(text, "500 or 2.5")
    value = _decimal(raw, raw, "a number of credits")
    if value > MAX_CREDITS:
        raise AmountError(f"{_shown(raw)} is more credits than creditbot takes ({MAX_CREDITS:,}).")
    if whole and value != value.to_integral_value():
        raise AmountError(f"{_shown(raw)} is not a whole number of credits.")
    milli = value * MILLI
    if milli != milli.to_integral_value():
        raise AmountError(f"{raw} has more than 3 decimals of a credit.")
    return int(milli)


def credits(amount: int | str) -> int:
    """Whole credits (an int) or typed credits (a str) as milli-credits: credits(10) == 10_000."""
    if isinstance(amount, bool) or not isinstance(amount, int | str):
        raise AmountError(f"{amount!r} is not a number of credits.")
    if isinstance(amount, int):
        if not 0 <= amount <= MAX_CREDITS:
            raise AmountError(f"{amount} is not a number of credits from 0 to {MAX_CREDITS:,}.")
        return amount * MILLI
    return parse_credits(amount)


def format_credits(milli: int) -> str:
    """Milli-credits as a person reads them: 1234500 -> '1,234.5'."""
    sign = "-" if milli < 0 else ""
    whole, frac = divmod(abs(milli), MILLI)
    text = f"{whole:,}"
    if frac:
        text += ("." + f"{frac:03d}").rstrip("0")
    return sign + text


# --- money --------------------------------------------------------------------------------


@cache
def _symbols() -> dict[str, str]:
    """Every currency's English symbol and its code, to the code they name ('€' -> EUR)."""
    named: dict[str, str] = {}
    for c in all_currencies():
        named.setdefault(get_currency_symbol(c.code, locale="en").upper(), c.code)
        named[c.code] = c.code
    return named


def _names_a_currency(marker: str) -> str | None:
    """The currency a typed symbol or code names, or '' for a currency sign of none."""
    found = _symbols().get(marker.upper())
    if found:
        return found
    return "" if any(unicodedata.category(ch) == "Sc" for ch in marker) else None


def _check_marker(marker: str, raw: str, c: Currency) -> None:
    """A symbol or code typed with the amount must be the account's own currency's."""
    if not marker or marker.upper() == c.code or (c.symbol and marker == c.symbol):
        return
    other = _names_a_currency(marker)
    if other is None:
        raise AmountError(f"{_shown(raw)} is not an amount: enter a number such as 50 or 50.00.")
    own = f"{c.symbol}50" if c.symbol else f"50 {c.code}"
    named = f" is in {other}" if other else f" uses {marker!r}"
    raise AmountError(
        f"{_shown(raw)}{named}, but this account pays in {c.code}: enter 50, {own} or 50 {c.code}."
    )


def parse_money(text: str, currency_code: str = "USD", *, allow_zero: bool = False) -> int:
    """An amount of money a person typed ('50', '$50', '50.00', '1,000', '50 EUR') as minor
    units of `currency_code`. Its own symbol or code may come with it, another currency's
    may not; no finer than the currency's smallest unit; above zero unless `allow_zero`;
    at most MAX_MONEY units. Anything else raises `AmountError`."""
    c = currency(currency_code)
    raw = _prepared(text, "50 or 50.00")
    parts = _SPLIT.fullmatch(raw)
    if parts is None:
        raise AmountError(f"{_shown(raw)} is not an amount: enter a number such as 50 or 50.00.")
    pre, post = parts.group("pre").strip(), parts.group("post").strip()
    if pre and post:
        raise AmountError(f"{_shown(raw)} is not an amount: enter a number such as 50 or 50.00.")
    marker = pre or post
    if marker.endswith(_MINUS) or marker.startswith(_MINUS):
        raise AmountError(f"{raw} is negative: enter a positive amount.")
    _check_marker(marker, raw, c)
    value = _decimal(parts.group("num"), raw, "an amount: enter a number such as 50 or 50.00")
    if value > MAX_MONEY:
        raise AmountError(f"{_shown(raw)} is more than creditbot takes ({MAX_MONEY:,} {c.code}).")
    if value.scaleb(c.digits) != value.scaleb(c.digits).to_integral_value():
        smallest = Decimal(1).scaleb(-c.digits)
        raise AmountError(f"{raw} is finer than the smallest unit of {c.code} ({smallest}).")
    minor = int(value.scaleb(c.exponent))
    if minor % c.step:
        step = format_money(c.step, c.code)
        raise AmountError(f"{raw}: Stripe takes {c.code} in steps of {step}.")
    if minor == 0 and not allow_zero:
        raise AmountError("Enter an amount greater than zero.")
    return minor


def currency_exponent(code: str) -> int:
    """Digits after the decimal point in Stripe's amounts of `code` (2 for USD, 0 for JPY).
    A code that is no currency (an account made before codes were checked) counts as 2."""
    try:
        return currency(code).exponent
    except InvalidInput:
        return 2


def format_money(minor: int, currency_code: str = "USD") -> str:
    """Minor units as money: 5000 USD -> '$50.00', 250000 VND -> '₫250,000'."""
    try:
        c = currency(currency_code)
        exponent, digits, symbol, code = c.exponent, c.digits, c.symbol, c.code
    except InvalidInput:
        exponent, digits, symbol, code = 2, 2, None, currency_code.upper()
    sign = "-" if minor < 0 else ""
    value = Decimal(abs(minor)).scaleb(-exponent)
    number = f"{value:,.{digits}f}"
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code}"


def money_to_credits(minor: int, currency_code: str, credits_per_unit: int) -> int:
    """What `minor` units of money buy, in milli-credits (credits_per_unit per 1.00)."""
    milli = (minor * credits_per_unit * MILLI) // 10 ** currency_exponent(currency_code)
    # Only exotic prices leave a remainder; round down so a top-up never mints credit from nothing.
    return milli


def credits_to_money(milli: int, currency_code: str, credits_per_unit: int) -> int:
    """Milli-credits valued in minor units of money, rounded down."""
    return (milli * 10 ** currency_exponent(currency_code)) // (credits_per_unit * MILLI)
