"""Errors the ledger raises. Each carries a message fit to show a person."""


class LedgerError(Exception):
    """Base class: bad input or a request the rules refuse. Nothing was changed."""

    code = "ledger_error"


class NotFound(LedgerError):
    code = "not_found"


class UnknownAccount(NotFound):
    code = "unknown_account"


class UnknownAgent(NotFound):
    code = "unknown_agent"


class UnknownCall(NotFound):
    code = "unknown_call"


class InvalidInput(LedgerError):
    code = "invalid_input"


class IdempotencyConflict(LedgerError):
    """The idempotency key was used before with a different request."""

    code = "idempotency_conflict"


class InsufficientCredits(LedgerError):
    """An admin debit larger than what the wallet holds."""

    code = "insufficient_credits"


class FieldError(InvalidInput):
    """Bad input in one named field of a form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NoSavedCard(FieldError):
    """Auto-recharge turned on for an account with no saved card for it to charge."""

    code = "no_saved_card"

    def __init__(self) -> None:
        super().__init__(
            "enabled",
            "Save a card first: auto-recharge charges the saved card, and none is saved yet.",
        )
