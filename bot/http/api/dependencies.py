"""What a /v1 handler asks FastAPI for: the account of the API key, the Idempotency-Key,
and the ids in paths."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from bot.http.api.authentication import ApiKeyAccount
from bot.http.api.schemas import MAX_ID

#: Longest Idempotency-Key accepted.
MAX_KEY_LENGTH = 128


async def current_account(request: Request) -> ApiKeyAccount:
    """The account of the request's API key, which its route (`ApiKeyRoute`) checked before
    anything else."""
    return request.state.account


CurrentAccount = Annotated[ApiKeyAccount, Depends(current_account)]

CallIdPath = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$", description="The call's id."),
]
AgentIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The agent's id.")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Your unique id for this piece of work (printable ASCII, no spaces). Retrying "
            "with the same key and body answers the first result and charges nothing more; "
            "the same key with another body is refused with 409."
        ),
    ),
]
