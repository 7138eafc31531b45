"""Voice calls: the first minute is paid when the call starts, each further minute when it
starts; under per-second billing the unused part of the last minute comes back at the end."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.charges import Charge, charge, refund
from ledger.cycles import utcnow
from ledger.errors import IdempotencyConflict, InvalidInput, UnknownAgent, UnknownCall
from ledger.journal import find_entry
from ledger.models import Account, Agent, Call, Entry

#: Longest call we accept the end of: a day.
MAX_DURATION = 24 * 3600


@dataclass(frozen=True)
class CallMinute:
    """The answer for one minute of a call. `hang_up` tells the runtime to end the call."""

    call_id: str
    minute: int
    charge: Charge

    @property
    def hang_up(self) -> bool:
        return not self.charge.allowed


@dataclass(frozen=True)
class CallEnd:
    call_id: str
    minutes_charged: int
    duration_seconds: int
    charged: int
    refunded: int
    replayed: bool = False


def _call(session: Session, account_id: int, call_id: str) -> Call:
    call = session.get(Call, call_id)
    if call is None or call.account_id != account_id:
        raise UnknownCall(f"No call {call_id!r} in this account.")
    return call


def start_call(
    session: Session,
    account_id: int,
    agent_id: int,
    *,
    idempotency_key: str,
    now: datetime | None = None,
) -> CallMinute:
    """Open a call and charge its first minute. Refused: the call never starts."""
    now = now or utcnow()
    key = f"call-start:{idempotency_key}"
    done = find_entry(session, account_id, key)
    if done is not None:
        if done.agent_id != agent_id or done.call_id is None:
            raise IdempotencyConflict("That idempotency key started another call.")
        return CallMinute(
            done.call_id,
            1,
            charge(session, account_id, agent_id, "call_minute", 1, idempotency_key=key),
        )
    agent = session.get(Agent, agent_id)
    if agent is None or agent.account_id != account_id:
        raise UnknownAgent(f"No agent {agent_id} in this account.")
    account = session.get(Account, account_id)
    assert account is not None
    call = Call(
        id=uuid.uuid4().hex,
        account_id=account_id,
        agent_id=agent_id,
        status="active",
        minutes_charged=0,
        minute_rate=account.call_minute_rate,
        per_second=account.per_second_billing,
        refunded=0,
        started_at=now,
    )
    session.add(call)
    session.flush()
    result = charge(
        session, account_id, agent_id, "call_minute", 1,
        idempotency_key=key, call_id=call.id, unit_price=call.minute_rate, now=now,
    )  # fmt: skip
    if result.allowed:
        call.minutes_charged = 1
    else:
        call.status, call.stop_reason, call.ended_at, call.duration_seconds = (
            "cut",
            result.reason,
            now,
            0,
        )
    return CallMinute(call.id, 1, result)


def continue_call(
    session: Session,
    account_id: int,
    call_id: str,
    minute: int,
    *,
    now: datetime | None = None,
) -> CallMinute:
    """Charge minute `minute` (2, 3, ...) as it starts. Asking again for a minute already
    answered charges nothing more. When it cannot be paid the call is cut: hang up."""
    now = now or utcnow()
    call = _call(session, account_id, call_id)
    if not isinstance(minute, int) or isinstance(minute, bool) or minute < 2:
        raise InvalidInput("Minute numbers start at 2: minute 1 is paid when the call starts.")
    key = f"call:{call_id}:minute:{minute}"
    if minute <= call.minutes_charged or (
        call.status == "cut" and minute == call.minutes_charged + 1
    ):
        done = find_entry(session, account_id, key)
        if done is not None:
            return CallMinute(
                call_id,
                minute,
                charge(session, account_id, call.agent_id, "call_minute", 1, idempotency_key=key),
            )
    if call.status != "active":
        raise InvalidInput(
            f"Call {call_id} has {'ended' if call.status == 'ended' else 'been cut'}."
        )
    if minute != call.minutes_charged + 1:
        raise InvalidInput(
            f"The next minute of this call is {call.minutes_charged + 1}, not {minute}."
        )
    result = charge(
        session, account_id, call.agent_id, "call_minute", 1,
        idempotency_key=key, call_id=call_id, unit_price=call.minute_rate, now=now,
    )  # fmt: skip
    if result.allowed:
        call.minutes_charged = minute
    else:
        call.status, call.stop_reason = "cut", result.reason
        call.ended_at, call.duration_seconds = now, call.minutes_charged * 60
    session.flush()
    return CallMinute(call_id, minute, result)


def end_call(
    session: Session,
    account_id: int,
    call_id: str,
    duration_seconds: int,
    *,
    now: datetime | None = None,
) -> CallEnd:
    """Close the call. Per-second billing refunds what the call did not use of what it paid."""
    now = now or utcnow()
    if not isinstance(duration_seconds, int) or isinstance(duration_seconds, bool):
        raise InvalidInput("The duration is a whole number of seconds.")
    if not 0 <= duration_seconds <= MAX_DURATION:
        raise InvalidInput(f"The duration must be 0 to {MAX_DURATION} seconds.")
    call = _call(session, account_id, call_id)
    if call.status == "ended":
        if call.duration_seconds != duration_seconds:
            raise IdempotencyConflict(
                f"Call {call_id} already ended after {call.duration_seconds} s."
            )
        return _ended(call, replayed=True)
    give_back = _unused_part_of_last_minute(call, duration_seconds) if call.per_second else 0
    call.status, call.duration_seconds = "ended", duration_seconds
    call.ended_at = call.ended_at or now
    if give_back:
        # Refund from the newest minute back, each minute no more than it charged.
        minutes = session.execute(
            select(Entry.id, Entry.amount)
            .where(Entry.call_id == call_id, Entry.kind == "usage", Entry.refused_reason.is_(None))
            .order_by(Entry.id.desc())
        ).all()
        remaining = give_back
        for entry_id, amount in minutes:
            if remaining <= 0:
                break
            part = min(remaining, amount)
            refund(
                session,
                account_id,
                entry_id,
                part,
                key=f"call:{call_id}:refund:{entry_id}",
                now=now,
            )
            remaining -= part
        call.refunded = give_back
    session.flush()
    return _ended(call)


def _unused_part_of_last_minute(call: Call, duration_seconds: int) -> int:
    """What per-second billing gives back (rule 4): the unused part of the last paid minute,
    never more. Each earlier minute was asked for as it started, so a duration shorter than
    the minutes already authorised does not make them free."""
    paid = call.minutes_charged * call.minute_rate
    used = -(-duration_seconds * call.minute_rate // 60)  # ceil: never refund a started milli
    return min(call.minute_rate, max(0, paid - used))


def _ended(call: Call, *, replayed: bool = False) -> CallEnd:
    return CallEnd(
        call_id=call.id,
        minutes_charged=call.minutes_charged,
        duration_seconds=call.duration_seconds or 0,
        charged=call.minutes_charged * call.minute_rate - call.refunded,
        refunded=call.refunded,
        replayed=replayed,
    )
