"""The audit trail on both databases: every settings change with who, from where, when,
before and after, in the change's own transaction, and rows nobody can change."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from ledger.accounts import configure_account, set_alert_channel, set_billing_admins
from ledger.agents import add_agent, update_agent, use_balance_for
from ledger.api_keys import create_key, revoke_key
from ledger.audit import Actor, list_events
from ledger.db import transaction
from ledger.errors import FieldError
from ledger.models.audit import AuditEvent
from ledger.units import credits
from ledger.wallet import credit_wallet, debit_wallet
from tests.support.factories import story

OPS = Actor.cli("ops")
ADMIN = Actor.slack("UADMIN")


def _trail(sessions, account_id):
    return transaction(sessions, lambda s: list_events(s, account_id))


def test_each_kind_of_change_is_recorded_with_who_and_where(sessions):
    ids = story(sessions, wallet=0)
    acc = ids["account"]

    def changes(s):
        configure_account(s, acc, message_rate=credits(2), topup_max_minor=50_000, actor=OPS)
        set_alert_channel(s, acc, "C0ALERTS", actor=ADMIN)
        set_billing_admins(s, acc, ["U0BILL"], actor=OPS)
        update_agent(s, acc, ids["a"], monthly_limit=credits(50), actor=ADMIN)
        add_agent(s, acc, "C", behaviour="use_balance", actor=Actor.api_key("cb_abcdefgh"))
        key = create_key(s, acc, "runtime", scope="admin", actor=OPS)
        revoke_key(s, acc, key.key.id, actor=OPS)
        credit_wallet(s, acc, credits(30), key="adj-1", kind="adjustment", memo="goodwill",
                      actor=OPS)  # fmt: skip
        debit_wallet(s, acc, credits(5), key="adj-2", memo="correction", actor=OPS)

    transaction(sessions, changes)
    trail = list(reversed(_trail(sessions, acc)))
    assert [e.action for e in trail if e.actor != "creditbot"] == [
        "account", "alert_channel", "billing_admins", "agent", "agent.created",
        "api_key.created", "api_key.revoked", "wallet.adjustment", "wallet.adjustment",
    ]  # fmt: skip
    account = next(e for e in trail if e.action == "account")
    assert account.before == {"message_rate": credits(1), "topup_max_minor": 100_000}
    assert account.after == {"message_rate": credits(2), "topup_max_minor": 50_000}
    assert (account.actor_kind, account.actor, account.source) == ("cli_operator", "ops", "cli")
    agent = next(e for e in trail if e.action == "agent")
    assert agent.subject == str(ids["a"]) and agent.after == {"monthly_limit": credits(50)}
    assert (agent.actor_kind, agent.source) == ("slack_user", "slack")
    created = [e for e in trail if e.action == "agent.created"][-1]
    assert (created.actor_kind, created.actor, created.source) == ("api_key", "cb_abcdefgh", "api")
    key = next(e for e in trail if e.action == "api_key.created")
    assert key.after["scope"] == "admin" and key.after["name"] == "runtime"
    adjustments = [e.after for e in trail if e.action == "wallet.adjustment"][-2:]
    assert [(a["amount"], a["memo"]) for a in adjustments] == [
        (credits(30), "goodwill"),
        (-credits(5), "correction"),
    ]


def test_saving_settings_as_they_were_records_nothing(sessions):
    ids = story(sessions, wallet=0)
    before = len(_trail(sessions, ids["account"]))
    transaction(
        sessions, lambda s: update_agent(s, ids["account"], ids["a"], behaviour="stop", actor=ADMIN)
    )
    transaction(sessions, lambda s: configure_account(s, ids["account"], actor=OPS))
    assert len(_trail(sessions, ids["account"])) == before


def test_a_refused_change_leaves_no_trace(sessions):
    ids = story(sessions, wallet=0)
    before = len(_trail(sessions, ids["account"]))

    def half_done(s):
        configure_account(s, ids["account"], message_rate=credits(3), actor=OPS)
        raise FieldError("amount", "refused after the first change")

    with pytest.raises(FieldError):
        transaction(sessions, half_done)
    assert len(_trail(sessions, ids["account"])) == before


def test_switching_waiting_agents_to_use_balance_is_recorded_per_agent(sessions):
    ids = story(sessions, plan=0, wallet=10)
    transaction(sessions, lambda s: use_balance_for(s, ids["account"], [ids["a"]], actor=ADMIN))
    (event,) = [e for e in _trail(sessions, ids["account"]) if e.action == "agent"]
    assert event.before == {"behaviour": "stop"} and event.after == {"behaviour": "use_balance"}


def test_nobody_can_change_or_delete_the_trail(engine, sessions):
    ids = story(sessions, wallet=0)
    transaction(sessions, lambda s: set_alert_channel(s, ids["account"], "C1", actor=ADMIN))
    for statement in (
        update(AuditEvent).values(actor="someone else"),
        delete(AuditEvent),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(statement)
    with engine.connect() as conn:
        actors = conn.execute(text("SELECT actor FROM audit_events")).scalars().all()
    assert "UADMIN" in actors and "someone else" not in actors
