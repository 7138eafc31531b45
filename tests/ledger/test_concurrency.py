"""Concurrent charges on one account never overdraw and never lose an update.

8 threads x 500 charges on one account whose credits run out midway: exactly as many
charges succeed as the credits allow, the rest are refused, and the ledger verifies.
"""

from __future__ import annotations

import threading
from collections import Counter

from ledger.accounts import AccountSettings, balance, create_account
from ledger.agents import add_agent
from ledger.charges import charge
from ledger.db import transaction
from ledger.units import credits
from ledger.verify import verify
from ledger.wallet import credit_wallet
from tests.support.factories import NOW

THREADS = 8
CHARGES = 500


def test_concurrent_charges_never_overdraw(sessions):
    def setup(s):
        account = create_account(
            s, AccountSettings(name="Busy", plan_credits=credits(1000), cycle_anchor_day=1), now=NOW
        )
        agents = [
            add_agent(s, account.id, f"agent-{n}", behaviour="use_balance", now=NOW).id
            for n in range(THREADS)
        ]
        credit_wallet(s, account.id, credits(1000), key="seed", now=NOW)
        return account.id, agents

    account_id, agents = transaction(sessions, setup)
    outcomes: Counter[tuple[bool, str | None]] = Counter()
    taken = {"plan": 0, "wallet": 0}
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(CHARGES):
                result = transaction(
                    sessions,
                    lambda s, i=i: charge(
                        s, account_id, agents[n], "message", 1, idempotency_key=f"{n}-{i}", now=NOW
                    ),
                    retries=10,
                )
                with lock:
                    outcomes[(result.allowed, result.reason)] += 1
                    taken["plan"] += result.from_plan
                    taken["wallet"] += result.from_wallet
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    # 1,000 plan credits + 1,000 wallet credits = exactly 2,000 one-credit messages.
    assert outcomes[(True, None)] == 2000
    assert outcomes[(False, "wallet_empty")] == THREADS * CHARGES - 2000
    assert taken == {"plan": credits(1000), "wallet": credits(1000)}
    view = transaction(sessions, lambda s: balance(s, account_id, now=NOW))
    assert (view.plan_balance, view.wallet_balance) == (0, 0)
    assert sum(a.month_spend for a in view.agents) == credits(2000), "no lost update of spend"
    assert transaction(sessions, verify) == []
