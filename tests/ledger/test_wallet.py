"""The wallet: credits once per key, debits that never take it below zero (rules 2, 8, 12),
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ledger.db import transaction
from ledger.errors import IdempotencyConflict, InsufficientCredits, InvalidInput
from ledger.units import credits
from ledger.verify import verify
from ledger.wallet import credit_wallet, debit_wallet
from tests.support.factories import NOW, story, view


def test_a_credit_is_made_once_per_key(sessions):
    ids = story(sessions, wallet=0)

    def credit(amount, key="pi_1", kind="topup"):
        return transaction(
            sessions,
            lambda s: credit_wallet(s, ids["account"], amount, key=key, kind=kind, now=NOW),
        )

    first = credit(credits(20))
    assert (first.amount, first.wallet_balance, first.replayed) == (credits(20), credits(20), False)
    again = credit(credits(20))
    assert again.replayed and again.entry_id == first.entry_id
    with pytest.raises(IdempotencyConflict):
        credit(credits(30))
    with pytest.raises(IdempotencyConflict):
        credit(credits(20), kind="adjustment")
    for amount, kind in ((0, "topup"), (-5, "topup"), (credits(1), "gift")):
        with pytest.raises(InvalidInput):
            credit(amount, key="other", kind=kind)
    assert view(sessions, ids).wallet_balance == credits(20)


def test_a_debit_never_takes_the_wallet_below_zero(sessions):
    ids = story(sessions, wallet=10)

    def debit(amount, key, partial=False):
        return transaction(
            sessions,
            lambda s: debit_wallet(s, ids["account"], amount, key=key, partial=partial, now=NOW),
        )

    with pytest.raises(InsufficientCredits):
        debit(credits(11), "too-much")
    assert view(sessions, ids).wallet_balance == credits(10)
    taken = debit(credits(4), "adj-1")
    assert (taken.amount, taken.wallet_balance, taken.shortfall) == (credits(4), credits(6), 0)
    # A refunded top-up takes what the wallet holds and reports the rest.
    short = debit(credits(9), "refund-1", partial=True)
    assert (short.amount, short.wallet_balance, short.shortfall) == (credits(6), 0, credits(3))
    again = debit(credits(9), "refund-1", partial=True)
    assert again.replayed and (again.amount, again.shortfall) == (credits(6), credits(3))
    assert transaction(sessions, verify) == []
