"""Slack OAuth tokens encrypted at rest: the bot, user and refresh tokens that OAuth installs
keep in `slack_installations` and `slack_bots`.

Keys come from `CREDITBOT_ENCRYPTION_KEYS`: Fernet keys separated by commas. The first
encrypts; every one of them decrypts, so a new key is put first, the tokens re-encrypted
with it (`rotate_tokens`), and the old key dropped afterwards. `cryptography`'s
MultiFernet does the work (authenticated encryption, and rotation, with its own format).

`EncryptedToken` is the column type the installation store reads and writes through; the
bulk functions below serve the migration that encrypted the tokens already stored, key
rotation, and the check `creditbot serve` makes before it starts.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import Text, TypeDecorator

from ledger.errors import LedgerError

ENV = "CREDITBOT_ENCRYPTION_KEYS"
#: The token columns of slack_sdk's installation store tables.
TOKEN_COLUMNS: dict[str, tuple[str, ...]] = {
    "slack_installations": ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token"),
    "slack_bots": ("bot_token", "bot_refresh_token"),
}
#: Every Fernet token starts so (version 0x80, then a timestamp); no Slack token does.
_FERNET_PREFIX = "gAAAAA"


class EncryptionKeyError(LedgerError):
    """The encryption keys are missing, malformed, or do not open the stored tokens."""

    code = "encryption_key"


class TokenCipher:
    """Encrypts with the first key, decrypts with any (MultiFernet)."""

    def __init__(self, keys: list[str]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except (ValueError, binascii.Error) as exc:
            raise EncryptionKeyError(
                f"{ENV} holds something that is not a Fernet key (32 bytes, url-safe base64):"
                " make one with `creditbot slack new-key`."
            ) from exc

    @classmethod
    def from_setting(cls, text: str | None) -> TokenCipher | None:
        """The cipher for `CREDITBOT_ENCRYPTION_KEYS`; None when it is empty."""
        keys = [key.strip() for key in (text or "").split(",") if key.strip()]
        return cls(keys) if keys else None

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, stored: str) -> str:
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken as exc:
            raise EncryptionKeyError(_cannot_decrypt()) from exc

    def rotate(self, stored: str) -> str:
        """`stored` encrypted with the first key (a token still in plain text, encrypted)."""
        if is_plain(stored):
            return self.encrypt(stored)
        try:
            return self._fernet.rotate(stored.encode()).decode()
        except InvalidToken as exc:
            raise EncryptionKeyError(_cannot_decrypt()) from exc


def new_key() -> str:
    """A fresh Fernet key, for `CREDITBOT_ENCRYPTION_KEYS`."""
    return Fernet.generate_key().decode()


def is_plain(stored: str) -> bool:
    """A token stored before encryption (no Fernet token looks like one)."""
    return not stored.startswith(_FERNET_PREFIX)


def _cannot_decrypt() -> str:
    return (
        f"A Slack token in the database cannot be decrypted with {ENV}: keep the key that"
        " encrypted it in the list (after the new one) until `creditbot slack rotate-key` ran."
    )


class EncryptedToken(TypeDecorator[str]):
    """A token column: encrypted on the way in, decrypted on the way out."""

    impl = Text
    cache_ok = True  # its one attribute, the cipher, is hashable (by identity)

    def __init__(self, cipher: TokenCipher) -> None:
        super().__init__()
        self.cipher = cipher

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.cipher.encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.cipher.decrypt(value)


# -- every stored token at once: migration, rotation, the check before serving ----------------


@dataclass(frozen=True)
class StoredToken:
    table: str
    row_id: int
    column: str
    value: str


def _table(name: str) -> sa.TableClause:
    return sa.table(name, sa.column("id"), *(sa.column(c) for c in TOKEN_COLUMNS[name]))


def stored_tokens(connection: Connection) -> Iterator[StoredToken]:
    """Every token stored, as it is in the database."""
    for name, columns in TOKEN_COLUMNS.items():
        table = _table(name)
        for row in connection.execute(sa.select(table)).mappings():
            for column in columns:
                if row[column] is not None:
                    yield StoredToken(name, row["id"], column, row[column])


def _rewrite(connection: Connection, change: Any) -> int:
    """Write `change(value)` over every stored token; returns how many."""
    tokens = list(stored_tokens(connection))
    for token in tokens:
        table = _table(token.table)
        connection.execute(
            sa.update(table)
            .where(table.c.id == token.row_id)
            .values({token.column: change(token.value)})
        )
    return len(tokens)


def rotate_tokens(connection: Connection, cipher: TokenCipher) -> int:
    """Re-encrypt every stored token with the first key (encrypting any left in plain
    text). Returns how many tokens were rewritten."""
    return _rewrite(connection, cipher.rotate)


def decrypt_tokens(connection: Connection, cipher: TokenCipher) -> int:
    """Put every stored token back in plain text (the migration's downgrade)."""
    return _rewrite(connection, lambda v: v if is_plain(v) else cipher.decrypt(v))


def key_problem(connection: Connection, cipher: TokenCipher | None) -> str | None:
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
