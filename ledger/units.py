"""Exact amounts: credits in milli-credits, money in minor units (cents). Never floats."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ledger.errors import InvalidInput

#: One credit is stored as 1,000 milli-credits, so per-second call prices stay exact enough.
MILLI = 1000

# ISO 4217 currencies whose minor unit is not the cent.
_ZERO_DECIMAL = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX"}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in `currency` (2 for USD, 0 for JPY)."""
    return 0 if currency.upper() in _ZERO_DECIMAL else 2


def credits(amount: int | str | Decimal) -> int:
    """Whole or decimal credits as milli-credits: credits(10) == 10_000."""
    try:
        value = Decimal(str(amount).replace(",", "").strip())
    except InvalidOperation as exc:
        raise InvalidInput(f"{amount!r} is not a number of credits") from exc
    milli = value * MILLI
    if milli != milli.to_integral_value():
        raise InvalidInput(f"{amount} has more than 3 decimals of a credit")
    return int(milli)


def format_credits(milli: int) -> str:
    """Milli-credits as a person reads them: 1234500 -> '1,234.5'."""
    sign = "-" if milli < 0 else ""
    whole, frac = divmod(abs(milli), MILLI)
    text = f"{whole:,}"
    if frac:
        text += ("." + f"{frac:03d}").rstrip("0")
    return sign + text


_MONEY = re.compile(r"^\s*(?P<sym>[$€£¥])?\s*(?P<num>[0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)\s*$")


def parse_money(text: str, currency: str = "USD") -> int:
    """A typed amount ('50', '$50', '50.00', '1,000') as minor units. Clear error otherwise."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidInput("Enter an amount, for example 50 or 50.00.")
    if raw.startswith("-"):
        raise InvalidInput(f"{raw} is negative: enter a positive amount.")
    match = _MONEY.match(raw)
    if not match:
        raise InvalidInput(f"{raw!r} is not an amount: enter a number such as 50 or 50.00.")
    num = match.group("num")
    integer_part = num.split(".")[0]
    if "," in integer_part and not re.fullmatch(r"[0-9]{1,3}(,[0-9]{3})+", integer_part):
        raise InvalidInput(f"{raw!r} has misplaced thousands separators.")
    value = Decimal(num.replace(",", ""))
    exponent = currency_exponent(currency)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        smallest = Decimal(1).scaleb(-exponent)
        raise InvalidInput(f"{raw} is finer than the smallest unit of {currency} ({smallest}).")
    if minor <= 0:
        raise InvalidInput("Enter an amount greater than zero.")
    return int(minor)


def format_money(minor: int, currency: str = "USD") -> str:
    """Minor units as money: 5000 USD -> '$50.00'."""
    exponent = currency_exponent(currency)
    sign = "-" if minor < 0 else ""
    value = Decimal(abs(minor)).scaleb(-exponent)
    number = f"{value:,.{exponent}f}"
    symbol = _SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"


def money_to_credits(minor: int, currency: str, credits_per_unit: int) -> int:
    """What `minor` units of money buy, in milli-credits (credits_per_unit per 1.00)."""
    milli = (minor * credits_per_unit * MILLI) // 10 ** currency_exponent(currency)
    # Only exotic prices leave a remainder; round down so a top-up never mints credit from nothing.
    return milli


def credits_to_money(milli: int, currency: str, credits_per_unit: int) -> int:
    """Milli-credits valued in minor units of money, rounded down."""
    return (milli * 10 ** currency_exponent(currency)) // (credits_per_unit * MILLI)
