"""Mutations: one invariant broken on purpose, to show the simulation catches it.

Each mutation replaces a function of the product with a broken copy, in the simulation's
process only and only for the run (`mock.patch`), and may drop a database guard from the
run's own database file. Production code paths are never touched. docs/simulation.md
shows the command and the failure each one gives.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from unittest import mock

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import bot.scheduler.jobs
import bot.stripe.recharges
import ledger.deliveries
import ledger.policy
import ledger.recharges
from ledger.auto_recharge import under_threshold
from ledger.cycles import cycle_start_on, local_date, zone
from ledger.journal import find_entry
from ledger.models import Account
from ledger.models.destinations import OutboxDelivery, WebhookEndpoint
from ledger.renewals import Renewal, renew_cycle


@dataclass(frozen=True)
class Mutation:
    what: str
    #: (object, attribute, replacement) patched for the run.
    patches: Callable[[], list[tuple[Any, str, Any]]]
    #: SQL run on the run's fresh database (a guard the mutation drops).
    sql: tuple[str, ...] = field(default=())


# --- skip the idempotency check ------------------------------------------------------------


def _without_idempotency() -> list[tuple[Any, str, Any]]:
    original = bot.stripe.recharges.charge_off_session

    @functools.wraps(original)
    def charge_off_session(context: Any, **kwargs: Any) -> Any:
        # A fresh key on every call: a retried attempt is a new payment to Stripe.
        kwargs["idempotency_key"] = f"{kwargs['idempotency_key']}-{uuid.uuid4().hex[:8]}"
        return original(context, **kwargs)

    return [(bot.stripe.recharges, "charge_off_session", charge_off_session)]


# --- drop the recharge in-flight guard ------------------------------------------------------


def _without_inflight_guard() -> list[tuple[Any, str, Any]]:
    def accounts_needing_recharge(session: Session) -> list[int]:
        accounts = session.execute(
            select(Account).where(
                Account.auto_recharge_enabled.is_(True), Account.auto_recharge_paused.is_(False)
            )
        ).scalars()
        return [a.id for a in accounts if under_threshold(a)]  # no "none in flight" filter

    return [
        (ledger.recharges, "pending_recharge", lambda session, account_id: None),
        (bot.stripe.recharges, "accounts_needing_recharge", accounts_needing_recharge),
    ]


# --- re-arm alerts early --------------------------------------------------------------------


def _rearm_early() -> list[tuple[Any, str, Any]]:
    original = ledger.policy.decide

    @functools.wraps(original)
    def decide(*args: Any, **kwargs: Any) -> ledger.policy.Decision:
        # "Plan exhausted" is never remembered as alerted: it re-arms at once.
        return original(*args, **kwargs)._replace(flag_plan_exhausted=False)

    return [(ledger.policy, "decide", decide)]


# --- renew twice on a DST day -----------------------------------------------------------------


def _renew_twice_on_dst_days() -> list[tuple[Any, str, Any]]:
    """Renewals keyed on the local date of their due instant, the instant worked out by hand
    with the UTC offset in force when the job runs. Any day the offset is the same as at
    the cycle's midnight, that date is the cycle's first day and the key holds. On a day
    the clocks spring forward, a run after the change puts the due instant an hour early,
    on the previous local day: a key no renewal has, so the cycle is renewed again."""

    def accounts_due(session: Session, *, now: datetime | None = None) -> list[int]:
        # Every account, every run: renew_due below decides, "idempotently".
        return list(session.execute(select(Account.id).order_by(Account.id)).scalars())

    def renew_due(
        session: Session, account_id: int, *, now: datetime | None = None
    ) -> list[Renewal]:
        now = now or datetime.now(UTC)
        account = session.get(Account, account_id)
        assert account is not None
        start = cycle_start_on(account.cycle_anchor_day, local_date(now, account.timezone))
        offset = now.astimezone(zone(account.timezone)).utcoffset()
        assert offset is not None
        due_at = datetime.combine(start, time(0), tzinfo=UTC) - offset
        if now < due_at or (account.cycle_start is not None and start < account.cycle_start):
            return []
        key = f"renewal:{local_date(due_at, account.timezone).isoformat()}"
        if find_entry(session, account_id, key) is not None:
            return []
        account.cycle_start = None  # the date guard trusts the key instead
        session.flush()
        with mock.patch("ledger.renewals.renewal_key", lambda _day: key):
            return [renew_cycle(session, account_id, start, now=now)]

    return [
        (bot.scheduler.jobs, "accounts_due", accounts_due),
        (bot.scheduler.jobs, "renew_due", renew_due),
    ]


# --- redeliver webhooks ---------------------------------------------------------------------


def _redeliver_webhooks() -> list[tuple[Any, str, Any]]:
    original = ledger.deliveries.mark_delivered

    @functools.wraps(original)
    def mark_delivered(session: Session, delivery_id: int, *, now: datetime | None = None) -> None:
        # Only the account's first endpoint has its deliveries marked: another endpoint's
        # stay claimed, and are sent again when the lease runs out.
        delivery = session.get(OutboxDelivery, delivery_id)
        endpoint = (
            delivery and delivery.endpoint_id and session.get(WebhookEndpoint, delivery.endpoint_id)
        )
        if endpoint:
            first = session.execute(
                select(func.min(WebhookEndpoint.id)).where(
                    WebhookEndpoint.account_id == endpoint.account_id
                )
            ).scalar_one()
            if endpoint.id != first:
                return
        original(session, delivery_id, now=now)

    return [(ledger.deliveries, "mark_delivered", mark_delivered)]


MUTATIONS: dict[str, Mutation] = {
    "skip-idempotency": Mutation(
        "off-session recharge charges go to Stripe without the attempt's idempotency key",
        _without_idempotency,
    ),
    "no-inflight-guard": Mutation(
        "a recharge is started while another is in flight (the check and the unique index gone)",
        _without_inflight_guard,
        ("DROP INDEX uq_recharges_one_pending",),
    ),
    "rearm-alerts-early": Mutation(
        "'plan credits exhausted' re-arms as soon as it fires instead of at the next renewal",
        _rearm_early,
    ),
    "renew-twice-dst": Mutation(
        "renewals keyed on the local date of their due instant, worked out with the UTC offset "
        "in force when the job runs: on a cycle day the clocks spring forward, renewed twice",
        _renew_twice_on_dst_days,
    ),
    "webhook-redeliver": Mutation(
        "a webhook delivery is marked delivered only for the account's first endpoint: the "
        "others' are sent again and again",
        _redeliver_webhooks,
    ),
}


@contextmanager
def mutated(name: str | None) -> Iterator[Mutation | None]:
    """The mutation `name` applied for the duration (None: the product as it is)."""
    if name is None:
        yield None
        return
    mutation = MUTATIONS[name]
    with ExitStack() as stack:
        for target, attribute, replacement in mutation.patches():
            stack.enter_context(mock.patch.object(target, attribute, replacement))
        yield mutation
