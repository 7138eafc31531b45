"""Alert emails over SMTP, received by a local SMTP server (aiosmtpd): each address gets
each alert once, through a refusal of its own; names are encoded, never markup."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import Settings
from bot.context import build_context
from bot.outbound.email import deliver_due_emails
from ledger import destinations
from ledger.charges import charge
from ledger.cycles import utcnow
from ledger.db import transaction
from ledger.errors import InvalidInput
from ledger.models import Account
from ledger.models.destinations import OutboxDelivery
from tests.support.factories import story
from tests.support.smtp_server import *  # noqa: F403  (the smtp_server fixture)

HOSTILE = "Ünïcode & <b>Co</b> *bold* <!channel>"


def _context(db_url, port, **extra):
    return build_context(
        Settings(database_url=db_url, smtp_host="127.0.0.1", smtp_port=port,
                 smtp_from="creditbot@example.com", run_scheduler=False, **extra)
    )  # fmt: skip


@pytest.fixture
def mailed(db_url, smtp_server):
    mailbox, port = smtp_server
    ctx = _context(db_url, port)
    ids = story(ctx.sessions, now=utcnow())

    def rename(session):
        session.get(Account, ids["account"]).name = HOSTILE

    transaction(ctx.sessions, rename)
    for address in ("finance@example.com", "ops@example.com"):
        transaction(ctx.sessions, lambda s, a=address: destinations.add_email(s, ids["account"], a))
    yield ctx, ids, mailbox
    ctx.engine.dispose()


def _use_up_plan(ctx, ids):
    transaction(
        ctx.sessions,
        lambda s: charge(s, ids["account"], ids["a"], "message", 1000, idempotency_key="k1"),
    )


def test_each_address_gets_each_alert_once_through_a_refusal(mailed):
    ctx, ids, mailbox = mailed
    _use_up_plan(ctx, ids)
    now = utcnow()
    mailbox.refuse_next(1)  # finance's first email is refused for now (451)
    assert deliver_due_emails(ctx, now=now) == 3, "ops got its three; finance waits"
    assert len(mailbox.to("ops@example.com")) == 3 and mailbox.to("finance@example.com") == []
    for later in (timedelta(seconds=6), timedelta(minutes=5), timedelta(hours=1)):
        deliver_due_emails(ctx, now=now + later)

    for address in ("finance@example.com", "ops@example.com"):
        got = mailbox.to(address)
        subjects = [m["Subject"] for m in got]
        assert subjects == [
            f"creditbot · {HOSTILE}: Plan credits are running low",
            f"creditbot · {HOSTILE}: Plan credits are used up",
            f"creditbot · {HOSTILE}: An agent stopped",
        ], address
        assert len({m["Message-ID"] for m in got}) == 3
    finance = mailbox.to("finance@example.com")
    text = finance[2].get_body(("plain",)).get_content()
    assert text.startswith("A stopped: plan credits ran out."), text
    assert f"creditbot · {HOSTILE}" in text, "plain text shows the name as typed"
    html = finance[2].get_body(("html",)).get_content()
    assert "<b>Co</b>" not in html and "&lt;b&gt;Co&lt;/b&gt;" in html
    assert mailbox.envelopes[0][0] == "creditbot@example.com"

    undelivered = transaction(
        ctx.sessions,
        lambda s: s.query(OutboxDelivery).filter(OutboxDelivery.delivered_at.is_(None)).count(),
    )
    assert undelivered == 0
    assert deliver_due_emails(ctx, now=now + timedelta(days=1)) == 0
    assert len(mailbox.messages) == 6


def test_without_smtp_the_emails_wait_with_the_reason(db_url, smtp_server):
    _, port = smtp_server
    ctx = build_context(Settings(database_url=db_url, run_scheduler=False))
    ids = story(ctx.sessions, now=utcnow())
    transaction(ctx.sessions, lambda s: destinations.add_email(s, ids["account"], "a@example.com"))
    _use_up_plan(ctx, ids)
    assert deliver_due_emails(ctx, now=utcnow()) == 0
    errors = transaction(
        ctx.sessions, lambda s: [d.last_error for d in s.query(OutboxDelivery).all()]
    )
    assert errors[0] == "email is off: set SMTP_HOST and SMTP_FROM"
    ctx.engine.dispose()


@pytest.mark.parametrize(
    "address", ["nope", "a@b", "x@example.com\r\nBcc: evil@example.com", "a,b@example.com"]
)
def test_addresses_that_could_carry_headers_are_refused(db_url, address):
    ctx = build_context(Settings(database_url=db_url, run_scheduler=False))
    ids = story(ctx.sessions)
    with pytest.raises(InvalidInput):
        transaction(ctx.sessions, lambda s: destinations.add_email(s, ids["account"], address))
    ctx.engine.dispose()
