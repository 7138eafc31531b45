"""Reading the settings forms that Slack's modals and the billing page both offer, so the
same text gets the same answer and the same error on the same field in both."""

from __future__ import annotations

from collections.abc import Mapping

from ledger.errors import InvalidInput
from ledger.units import parse_money

#: The auto-recharge form's money fields.
AUTO_RECHARGE_FIELDS = ("threshold", "amount", "monthly_cap")


def money_field(text: str, currency: str) -> int:
    """Minor units, 0 for a blank or zero field (the ledger says whether 0 is allowed)."""
    return parse_money(text, currency, allow_zero=True) if text else 0


def auto_recharge_fields(
    texts: Mapping[str, str], currency: str
) -> tuple[dict[str, int | None], dict[str, str]]:
    """The threshold, amount and monthly cap typed (a blank cap keeps the cap as it is),
    and an error per field that is not an amount."""
    values: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for name in AUTO_RECHARGE_FIELDS:
        text = (texts.get(name) or "").strip()
        try:
            values[name] = money_field(text, currency)
        except InvalidInput as exc:
            errors[name] = str(exc)
        if name == "monthly_cap" and not text:
            values[name] = None
    return values, errors


def recharge_target_field(text: str, currency: str) -> tuple[int | None, str | None]:
    """The balance a 'target' recharge tops up to (0 for blank: the ledger says whether
    that is allowed), or the error on its field."""
    try:
        return money_field((text or "").strip(), currency), None
    except InvalidInput as exc:
        return None, str(exc)
