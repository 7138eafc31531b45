"""Alert levels (rule 10): several thresholds per alert kind, set by billing admins.

- plan credits low: % of the cycle's grant left (default 20);
- wallet low: credits left (default 1,000);
- an agent's monthly limit and the account's budget: % spent (default 80 and 100).

Each level fires once when it is crossed and re-arms when the balance or spend goes back
(the crossing is the policy's, `ledger/policy.py`); a low plan or wallet lifted above
all its levels again says "recovered" (`ledger/recovery.py`). The account keeps the levels
as comma-separated integers, which the charge's locked read takes as they are, and the
highest plan and wallet level in the single-threshold columns older readers know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ledger import audit, policy
from ledger.audit import Actor
from ledger.cycles import utcnow
from ledger.errors import FieldError, InvalidInput
from ledger.journal import lock_account
from ledger.models import Account
from ledger.units import credits

#: Most levels per kind: more is noise, not a warning.
MAX_LEVELS = 5
#: The kinds, the Account column each is kept in, and what a level is.
KINDS = {
    "plan": "plan_alert_levels",
    "wallet": "wallet_alert_levels",
    "limit": "limit_alert_levels",
    "budget": "budget_alert_levels",
}


@dataclass(frozen=True)
class AlertLevels:
    """An account's levels: percents, and the wallet's in milli-credits."""

    plan: tuple[int, ...]
    wallet: tuple[int, ...]
    limit: tuple[int, ...]
    budget: tuple[int, ...]


def alert_levels(account: Account) -> AlertLevels:
    return AlertLevels(**{kind: policy.levels(getattr(account, c)) for kind, c in KINDS.items()})


_WALLET_SEPARATORS = re.compile(r"[;\s]+|,\s+")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def parse_percents(text: str | None, kind: str) -> tuple[int, ...]:
    """Percent levels as a person types them ('50, 20, 5', '80%, 100%'); blank is none."""
    found = []
    for part in _split(text or ""):
        raw = part.removesuffix("%").strip()
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise FieldError(kind, f"{part!r} is not a level: enter percents from 1 to 100.")
        found.append(int(raw))
    return check_levels(kind, found)


def parse_wallet_levels(text: str | list[str] | None) -> tuple[int, ...]:
    """Wallet levels in credits as a person types them, as milli-credits, read with the
    one credits parser; blank is none. Levels are separated by spaces, ';' or ', ' (a
    comma with no space is a thousands separator: '1,000, 200' is two levels)."""
    parts = _WALLET_SEPARATORS.split(text or "") if isinstance(text, str) else list(text or [])
    found = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        try:
            found.append(credits(part))
        except InvalidInput as exc:
            raise FieldError(
                "wallet",
                f"{part!r} is not a number of credits (separate levels with spaces or ';').",
            ) from exc
    return check_levels("wallet", found)


def check_levels(kind: str, levels: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """The levels, each once, in the order they fire (falling balances: highest first;
    rising spend: lowest first), or a clear error on the kind's field."""
    if kind not in KINDS:
        raise InvalidInput(f"{kind!r} is not an alert kind: choose {', '.join(KINDS)}.")
    unique = sorted(set(levels), reverse=kind in ("plan", "wallet"))
    if len(unique) > MAX_LEVELS:
        raise FieldError(kind, f"At most {MAX_LEVELS} levels.")
    for level in unique:
        if not isinstance(level, int) or isinstance(level, bool):
            raise FieldError(kind, "Levels are whole numbers.")
        if kind == "wallet" and not 0 < level <= 10**15:
            raise FieldError(kind, "A wallet level is a number of credits above 0.")
        if kind != "wallet" and not 1 <= level <= 100:
            raise FieldError(kind, "A level is a percent from 1 to 100.")
    return tuple(unique)


def _text(levels: tuple[int, ...]) -> str:
    return ",".join(str(level) for level in levels)


def set_alert_levels(
    session: Session,
    account_id: int,
    *,
    plan: tuple[int, ...] | list[int] | None = None,
    wallet: tuple[int, ...] | list[int] | None = None,
    limit: tuple[int, ...] | list[int] | None = None,
    budget: tuple[int, ...] | list[int] | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> AlertLevels:
    """Change the levels of the kinds given (None leaves a kind as it is; an empty list
    turns its alerts off). Everything is checked before anything is saved."""
    new = {
        kind: check_levels(kind, value)
        for kind, value in (("plan", plan), ("wallet", wallet), ("limit", limit),
                            ("budget", budget))
        if value is not None
    }  # fmt: skip
    account = lock_account(session, account_id)
    before = alert_levels(account)
    for kind, levels in new.items():
        setattr(account, KINDS[kind], _text(levels))
    after = alert_levels(account)
    # The single-threshold columns: the highest level, or 0 for none (older readers).
    account.plan_low_percent = max(after.plan, default=0)
    account.wallet_low_credits = max(after.wallet, default=0)
    audit.record(
        session, account_id, actor, "alert_levels",
        {k: list(getattr(before, k)) for k in KINDS}, {k: list(getattr(after, k)) for k in KINDS},
        now=now or utcnow(),
    )  # fmt: skip
    session.flush()
    return after
