"""Currencies: which codes an account may use, how Stripe counts each one's amounts, its
symbol, and the default top-up range and auto-recharge cap.

- **Codes and minor units** come from ISO 4217 itself (the `iso4217` package ships ISO's
  table): a current currency, not a fund, precious metal or testing code (`XTS`, `XXX`).
- **Stripe's own lists** (docs: "Supported currencies") win where Stripe counts amounts
  differently: its zero-decimal currencies take whole units; its three-decimal currencies
  take amounts whose last digit is 0; ISK is zero-decimal but sent as two-decimal with 00.
- **Symbols** are CLDR's English ones (`babel`), so "€50" can be told from "$50".
- **Defaults** for the top-up range are the USD defaults (10.00 to 1,000.00) at a rough
  rate per US dollar (`ROUGH_PER_USD`), rounded to 1, 2 or 5 times a power of ten; the
  auto-recharge monthly cap starts at half the maximum (500.00 of 1,000.00). They are
  defaults, not prices: an operator sets the real range. A currency without a rough rate
  has no default range: give one.

Amounts are stored and sent to Stripe in Stripe's minor units (`Currency.exponent`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

import iso4217
from babel.numbers import get_currency_symbol

from ledger.errors import InvalidInput

#: Stripe's zero-decimal currencies: an amount of 500 is 500 yen, not 5.00.
STRIPE_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
#: Stripe's three-decimal currencies: amounts in thousandths, the last digit always 0.
STRIPE_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
#: Zero-decimal, but Stripe takes them as two-decimal amounts ending in 00.
STRIPE_WHOLE_UNITS_IN_CENTS = frozenset({"ISK"})

#: Rough units of each currency per US dollar, only for default top-up ranges and caps
#: (early 2026, to within a factor of about 1.5 once rounded). Not used to price anything.
ROUGH_PER_USD: dict[str, float] = {
    "USD": 1, "EUR": 0.9, "GBP": 0.78, "CHF": 0.88, "CAD": 1.38, "AUD": 1.55, "NZD": 1.7,
    "JPY": 150, "CNY": 7.2, "HKD": 7.8, "SGD": 1.34, "TWD": 32, "KRW": 1400, "INR": 86,
    "IDR": 16_000, "MYR": 4.4, "THB": 34, "PHP": 57, "VND": 25_000, "PKR": 280, "BDT": 120,
    "LKR": 300, "SEK": 10.5, "NOK": 10.8, "DKK": 6.7, "ISK": 138, "PLN": 3.9, "CZK": 23,
    "HUF": 360, "RON": 4.5, "TRY": 38, "ILS": 3.6, "AED": 3.67, "SAR": 3.75,
    "QAR": 3.64, "KWD": 0.31, "BHD": 0.376, "OMR": 0.385, "JOD": 0.71, "TND": 3.0,
    "EGP": 50, "MAD": 9.5, "ZAR": 18, "NGN": 1500, "KES": 129, "UGX": 3700, "RWF": 1400,
    "XAF": 600, "XOF": 600, "XPF": 110, "MXN": 19, "BRL": 5.5, "CLP": 950, "COP": 4100,
    "PEN": 3.7, "PYG": 7800,
}  # fmt: skip

#: The USD defaults the others are derived from, in whole dollars.
USD_TOPUP_MIN, USD_TOPUP_MAX = 10, 1_000

#: ISO codes that name no currency an account could be billed in.
_NOT_MONEY = frozenset(
    "XTS XXX XAU XAG XPD XPT XDR XSU XUA XBA XBB XBC XBD".split()
)  # fmt: skip


@dataclass(frozen=True)
class Currency:
    code: str
    name: str
    #: Digits after the point in Stripe's amounts: an amount of 1 is 10**-exponent units.
    exponent: int
    #: Digits a person writes (ISK: none, though Stripe counts it in hundredths).
    digits: int
    #: The smallest step of a chargeable amount, in Stripe's minor units (KWD: 10).
    step: int
    #: CLDR's English symbol ('$', '€', 'CA$'), or None when the code is written instead.
    symbol: str | None

    @property
    def minor_per_unit(self) -> int:
        return 10**self.exponent


def _funds() -> frozenset[str]:
    """Codes ISO marks as funds (BOV, CLF, USN, ...): units of account, not money."""
    return frozenset(
        node.findtext("Ccy", "").strip()
        for node in iso4217.raw_xml.findall("CcyTbl/CcyNtry")
        if (node.find("CcyNm") is not None and node.find("CcyNm").get("IsFund") == "true")
    )


@cache
def _table() -> dict[str, Currency]:
    funds = _funds()
    table = {}
    for entry in iso4217.Currency:
        code = entry.code
        if entry.exponent is None or code in _NOT_MONEY or code in funds:
            continue
        digits = entry.exponent
        exponent, step = digits, 1
        if code in STRIPE_ZERO_DECIMAL:
            exponent = digits = 0
        elif code in STRIPE_THREE_DECIMAL:
            exponent, step = 3, 10
        elif code in STRIPE_WHOLE_UNITS_IN_CENTS:
            exponent, digits, step = 2, 0, 100
        symbol = get_currency_symbol(code, locale="en")
        # A symbol that is only letters (CHF, FCFA) reads better as the code after the number.
        written = None if symbol.isalpha() else symbol
        table[code] = Currency(code, entry.currency_name, exponent, digits, step, written)
    return table


def currency(code: str) -> Currency:
    """The currency `code` names ('usd' or 'USD'), or a clear error."""
    text = (code or "").strip().upper()
    found = _table().get(text) if len(text) == 3 and text.isascii() else None
    if found is None:
        raise InvalidInput(
            f"{code!r} is not a currency code creditbot can bill in (ISO 4217, e.g. USD, EUR, JPY)."
        )
    return found


def is_currency(code: str) -> bool:
    try:
        currency(code)
    except InvalidInput:
        return False
    return True


def all_currencies() -> list[Currency]:
    """Every currency an account may use, by code."""
    return sorted(_table().values(), key=lambda c: c.code)


def _round_125(value: float) -> float:
    """The 1, 2 or 5 times a power of ten nearest to `value` (on a log scale)."""
    power = 10 ** math.floor(math.log10(value))
    return min(
        (m * power for m in (1, 2, 5, 10)), key=lambda candidate: abs(math.log(candidate / value))
    )


def _default_minor(c: Currency, usd: int) -> int:
    rate = ROUGH_PER_USD.get(c.code)
    if rate is None:
        raise InvalidInput(
            f"creditbot has no default top-up range for {c.code}: set the minimum and the"
            " maximum (--topup-min and --topup-max)."
        )
    whole = Decimal(str(_round_125(usd * rate)))
    minor = int(whole * c.minor_per_unit)
    return max(c.step, minor - minor % c.step)


@dataclass(frozen=True)
class TopupRange:
    min_minor: int
    max_minor: int


def default_topup_range(code: str) -> TopupRange:
    """The default top-up minimum and maximum of `code`, in its minor units; a clear error
    for a currency without a rough rate."""
    c = currency(code)
    return TopupRange(_default_minor(c, USD_TOPUP_MIN), _default_minor(c, USD_TOPUP_MAX))


def default_monthly_cap(code: str, topup_min_minor: int, topup_max_minor: int) -> int:
    """The default auto-recharge monthly cap: half the top-up maximum (500.00 of 1,000.00),
    in the currency's steps, and never under the minimum."""
    step = currency(code).step
    half = topup_max_minor // 2
    return max(topup_min_minor, half - half % step)
