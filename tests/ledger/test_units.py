"""Exact amounts and the bad input of rule 13."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.agents import parse_limit
from ledger.currencies import ROUGH_PER_USD, currency, default_topup_range
from ledger.errors import InvalidInput
from ledger.units import (
    MAX_CREDITS,
    MAX_MONEY,
    AmountError,
    credits,
    credits_to_money,
    format_credits,
    format_money,
    money_to_credits,
    parse_credits,
    parse_money,
)
from tests.support.hostile_input import NOT_AMOUNTS


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("50", 5000),
        ("$50", 5000),
        ("50.00", 5000),
        ("1,000", 100000),
        ("$1,000.50", 100050),
        (" 10.5 ", 1050),
    ],
)
def test_money_people_type(text, minor):
    assert parse_money(text) == minor


@pytest.mark.parametrize(
    "text", ["abc", "-5", "0.001", "0", "", "5,0000", "1.2.3", "$", "NaN", "1e3"]
)
def test_money_that_is_refused(text):
    with pytest.raises(InvalidInput):
        parse_money(text)


def test_zero_decimal_currency():
    assert parse_money("500", "JPY") == 500
    with pytest.raises(InvalidInput):
        parse_money("500.5", "JPY")
    assert format_money(500, "JPY") == "¥500"


def test_formatting():
    assert format_money(123456) == "$1,234.56"
    assert format_credits(1234500) == "1,234.5"
    assert format_credits(-10) == "-0.01"


def test_credit_price_conversions_are_exact():
    assert money_to_credits(5000, "USD", 100) == credits(5000)
    assert credits_to_money(credits(5000), "USD", 100) == 5000
    assert money_to_credits(1, "USD", 100) == credits(1)


@pytest.mark.parametrize(
    ("text", "limit"), [("500", 500_000), ("1,000", 1_000_000), ("", None), ("none", None)]
)
def test_limits(text, limit):
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["0", "-5", "2.5", "abc", "1e3"])
def test_bad_limits(text):
    with pytest.raises(InvalidInput):
        parse_limit(text)


# --- one bounded parser for credits, one for money (issue 10 items 13, 14) ---------------


@pytest.mark.parametrize("text", NOT_AMOUNTS)
def test_hostile_amounts_get_the_parsers_own_clear_error(text):
    for parse in (
        lambda t: parse_money(t, "USD"),
        lambda t: parse_money(t, "JPY"),
        parse_credits,
        credits,
        parse_limit,
    ):
        with pytest.raises(AmountError) as refused:
            parse(text)
        message = str(refused.value)
        assert message and "Traceback" not in message and len(message) < 300


def test_another_currencys_symbol_is_refused_and_says_which():
    with pytest.raises(AmountError, match="'€50' is in EUR, but this account pays in USD"):
        parse_money("€50", "USD")
    with pytest.raises(AmountError, match="is in USD, but this account pays in EUR"):
        parse_money("$50", "EUR")
    assert parse_money("€50", "EUR") == parse_money("50 EUR", "EUR") == 5000
    assert parse_money("50 usd", "USD") == parse_money("USD 50", "USD") == 5000
    assert parse_money("CA$50", "CAD") == 5000


def test_bounds():
    assert parse_money("1,000,000,000", "USD") == 10**11
    with pytest.raises(AmountError, match="more than creditbot takes"):
        parse_money("1,000,000,001", "USD")
    assert parse_credits("1,000,000,000,000") == 10**15
    with pytest.raises(AmountError, match="more credits than creditbot takes"):
        parse_credits("1,000,000,000,001")
    with pytest.raises(AmountError):
        credits(10**13)


@given(text=st.text(max_size=60), code=st.sampled_from(["USD", "JPY", "KWD", "ISK", "EUR"]))
def test_no_text_raises_anything_but_the_parsers_own_error(text, code):
    for parse, largest in (
        (lambda t: parse_money(t, code), MAX_MONEY * 10 ** currency(code).exponent),
        (
            lambda t: parse_money(t, code, allow_zero=True),
            MAX_MONEY * 10 ** currency(code).exponent,
        ),
        (parse_credits, MAX_CREDITS * 1000),
        (parse_limit, MAX_CREDITS * 1000),
    ):
        try:
            value = parse(text)
        except AmountError:
            continue
        assert value is None or (isinstance(value, int) and 0 <= value <= largest)


#: Text that looks almost like an amount: where parsers slip.
_NEAR_AMOUNTS = st.from_regex(
    r"[-+ ]?(\$|€|¥|CA\$|USD|usd)?[ ]?[0-9,._²e٣ ]{0,24}(EUR| JPY|kr)?", fullmatch=True
)


@given(text=_NEAR_AMOUNTS, code=st.sampled_from(["USD", "JPY", "KWD", "VND"]))
def test_near_amounts_parse_exactly_or_are_refused(text, code):
    try:
        minor = parse_money(text, code)
    except AmountError:
        return
    c = currency(code)
    assert isinstance(minor, int) and minor > 0 and minor % c.step == 0
    # What was taken is what was typed: the digits, read in the currency's own units.
    typed = "".join(ch for ch in text if ch in "0123456789.")
    assert Decimal(typed).scaleb(c.exponent) == minor


def test_currencies_from_iso_4217_with_stripes_own_minor_units():
    assert parse_money("250,000", "VND") == 250_000  # zero-decimal at Stripe
    assert format_money(250_000, "VND") == "₫250,000"
    with pytest.raises(AmountError, match="finer than the smallest unit of VND"):
        parse_money("10.5", "VND")
    assert parse_money("5.12", "KWD") == 5120  # three-decimal, the last digit 0
    with pytest.raises(AmountError, match="steps of"):
        parse_money("5.125", "KWD")
    assert parse_money("500", "ISK") == 50_000  # whole krónur, sent in hundredths
    with pytest.raises(AmountError, match="finer than the smallest unit of ISK"):
        parse_money("500.5", "ISK")
    assert format_money(50_000, "ISK") == "500 ISK"
    for code in ("ZZZ", "XTS", "XXX", "XAU", "BOV", "US", "€", ""):
        with pytest.raises(InvalidInput, match="not a currency code"):
            currency(code)
    assert currency("usd").code == "USD"


def test_default_top_up_ranges_make_sense_in_each_currency():
    usd = default_topup_range("USD")
    assert (usd.min_minor, usd.max_minor) == (1000, 100_000)  # 10.00 to 1,000.00
    vnd = default_topup_range("VND")
    assert format_money(vnd.min_minor, "VND") == "₫200,000"  # not "10.00 VND"
    assert format_money(vnd.max_minor, "VND") == "₫20,000,000"
    jpy = default_topup_range("JPY")
    assert (jpy.min_minor, jpy.max_minor) == (2000, 200_000)
    kwd = default_topup_range("KWD")
    assert kwd.min_minor % currency("KWD").step == 0
    for code, rate in ROUGH_PER_USD.items():
        r = default_topup_range(code)
        c = currency(code)
        # Within a factor of 3 of 10 and 1,000 US dollars, in Stripe's minor units.
        for minor, usd_value in ((r.min_minor, 10), (r.max_minor, 1000)):
            in_usd = minor / 10**c.exponent / rate
            assert usd_value / 3 <= in_usd <= usd_value * 3, (code, minor)
    with pytest.raises(InvalidInput, match="no default top-up range for AFN"):
        default_topup_range("AFN")
