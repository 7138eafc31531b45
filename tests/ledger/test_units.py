"""Exact amounts and the bad input of rule 13."""

from __future__ import annotations

import pytest

from ledger.agents import parse_limit
from ledger.errors import InvalidInput
from ledger.units import (
    credits,
    credits_to_money,
    format_credits,
    format_money,
    money_to_credits,
    parse_money,
)


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
