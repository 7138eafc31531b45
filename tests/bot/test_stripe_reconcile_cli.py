"""`creditbot stripe reconcile` by hand: without a Stripe key it says it did nothing and
why; with one, its progress bar is fed each Stripe object it reads."""

from __future__ import annotations

from types import SimpleNamespace

from bot.config import Settings
from bot.context import build_context
from ledger.cycles import utcnow


def test_stripe_reconcile_without_a_key_says_it_did_nothing(creditbot, sqlite_url):
    creditbot.env(DATABASE_URL=sqlite_url, STRIPE_SECRET_KEY="")
    result = creditbot("stripe", "reconcile", code=1)
    assert result.stderr.strip() == (
        "Nothing reconciled: Stripe is not configured (STRIPE_SECRET_KEY is not set)."
    )
    assert "reconciled:" not in result.stdout


def test_reconcile_reports_its_progress_as_it_reads_stripe(sqlite_url, monkeypatch):
    """What the progress bar of `creditbot stripe reconcile` shows: each Stripe object read,
    and how many payments were credited so far."""
    import bot.stripe.reconcile as reconcile

    created = int(utcnow().timestamp())

    def listing(*items):
        return SimpleNamespace(auto_paging_iter=lambda: iter(items))

    # Objects of no creditbot account: read, and not credited.
    sessions = [{"id": f"cs_{n}", "created": created, "mode": "payment",
                 "payment_status": "paid", "metadata": {}} for n in range(3)]  # fmt: skip
    intents = [{"id": "pi_1", "created": created, "status": "succeeded", "metadata": {}}]
    api = SimpleNamespace(
        checkout=SimpleNamespace(sessions=SimpleNamespace(list=lambda params: listing(*sessions))),
        payment_intents=SimpleNamespace(list=lambda params: listing(*intents)),
    )
    monkeypatch.setattr(reconcile, "client", lambda context: SimpleNamespace(v1=api))
    ctx = build_context(Settings(_env_file=None, database_url=sqlite_url, stripe_secret_key="sk_x"))
    seen: list[tuple[int, int]] = []
    try:
        assert reconcile.reconcile_payments(ctx, progress=lambda *p: seen.append(p)) == 0
    finally:
        ctx.engine.dispose()
    assert seen == [(1, 0), (2, 0), (3, 0), (4, 0)]
