"""Slack OAuth tokens encrypted at rest: the bot, user and refresh tokens that OAuth installs
keep in `slack_installations` and `slack_bots`, with the keys and cipher of every secret the
database keeps (ledger/secrets_at_rest.py; its names are re-exported here).

The installation store reads and writes the token columns through `EncryptedToken`; the
functions below serve migration 0007 (which encrypted the tokens already stored) and the
check `creditbot serve` makes before it starts.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.engine import Connection

from ledger.secrets_at_rest import (
    ENV,
    SLACK_TOKENS,
    EncryptionKeyError,
    SecretCipher,
    StoredSecret,
    decrypt_secrets,
    is_plain,
    new_key,
    rotate_secrets,
    stored_secrets,
)
from ledger.secrets_at_rest import EncryptedText as EncryptedToken

__all__ = [
    "ENV",
    "TOKEN_COLUMNS",
    "EncryptedToken",
    "EncryptionKeyError",
    "StoredToken",
    "TokenCipher",
    "decrypt_tokens",
    "is_plain",
    "key_problem",
    "new_key",
    "rotate_tokens",
    "stored_tokens",
]

TokenCipher = SecretCipher
StoredToken = StoredSecret
#: The token columns of slack_sdk's installation store tables.
TOKEN_COLUMNS: dict[str, tuple[str, ...]] = {kind.table: kind.columns for kind in SLACK_TOKENS}


def stored_tokens(connection: Connection) -> Iterator[StoredSecret]:
    """Every token stored, as it is in the database."""
    return stored_secrets(connection, SLACK_TOKENS)


def rotate_tokens(connection: Connection, cipher: SecretCipher) -> int:
    """Re-encrypt every stored token with the first key (encrypting any left in plain
    text). Returns how many tokens were rewritten."""
    return sum(rotate_secrets(connection, cipher, SLACK_TOKENS).values())


def decrypt_tokens(connection: Connection, cipher: SecretCipher) -> int:
    """Put every stored token back in plain text (the migration's downgrade)."""
    return sum(decrypt_secrets(connection, cipher, SLACK_TOKENS).values())


def key_problem(connection: Connection, cipher: SecretCipher | None) -> str | None:
    """Why the stored tokens cannot be used with these keys, in one line; None when they
    can (or when there are none)."""
    tokens = list(stored_tokens(connection))
    if not tokens:
        return None
    if cipher is None:
        return (
            f"{len(tokens)} Slack token(s) of OAuth installs are stored, but {ENV} is not set:"
            " set the key(s) that encrypted them (see docs/slack.md)."
        )
    if any(is_plain(t.value) for t in tokens):
        return (
            "Slack tokens are stored in plain text: encrypt them with `creditbot db upgrade`"
            " or `creditbot slack rotate-key`."
        )
    try:
        for token in tokens:
            cipher.decrypt(token.value)
    except EncryptionKeyError as exc:
        return str(exc)
    return None
