"""Secrets the database keeps, encrypted at rest: the Slack tokens of OAuth installs, the
signing secrets of webhook endpoints, and the key of signed links the server made for
itself (when SECRET_KEY is unset).

Keys come from `CREDITBOT_ENCRYPTION_KEYS`: Fernet keys separated by commas. The first
encrypts; every one of them decrypts, so a new key is put first, the secrets re-encrypted
with it (`rotate_secrets`), and the old key dropped afterwards. `cryptography`'s
MultiFernet does the work (authenticated encryption, and rotation, with its own format).

`EncryptedText` is a column type that encrypts on the way in and decrypts on the way out
(the Slack installation store reads and writes through it); the bulk functions below serve
the migrations that encrypted what was already stored, key rotation, and the checks of
`creditbot serve` and `creditbot doctor`.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import Text, TypeDecorator

from ledger.errors import LedgerError

ENV = "CREDITBOT_ENCRYPTION_KEYS"
#: Every Fernet token starts so (version 0x80, then a timestamp); no secret we keep does.
_FERNET_PREFIX = "gAAAAA"


class EncryptionKeyError(LedgerError):
    """The encryption keys are missing, malformed, or do not open the stored secrets."""

    code = "encryption_key"


def _cannot_decrypt(what: str) -> str:
    return (
        f"A {what} in the database cannot be decrypted with {ENV}: keep the key that"
        " encrypted it in the list (after the new one) until `creditbot slack rotate-key` ran."
    )


class SecretCipher:
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
    def from_setting(cls, text: str | None) -> SecretCipher | None:
        """The cipher for `CREDITBOT_ENCRYPTION_KEYS`; None when it is empty."""
        keys = [key.strip() for key in (text or "").split(",") if key.strip()]
        return cls(keys) if keys else None

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, stored: str, what: str = "Slack token") -> str:
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken as exc:
            raise EncryptionKeyError(_cannot_decrypt(what)) from exc

    def rotate(self, stored: str, what: str = "Slack token") -> str:
        """`stored` encrypted with the first key (a secret still in plain text, encrypted)."""
        if is_plain(stored):
            return self.encrypt(stored)
        try:
            return self._fernet.rotate(stored.encode()).decode()
        except InvalidToken as exc:
            raise EncryptionKeyError(_cannot_decrypt(what)) from exc


def new_key() -> str:
    """A fresh Fernet key, for `CREDITBOT_ENCRYPTION_KEYS`."""
    return Fernet.generate_key().decode()


def is_plain(stored: str) -> bool:
    """A secret stored before encryption (no Fernet token looks like one)."""
    return not stored.startswith(_FERNET_PREFIX)


def reveal(stored: str, cipher: SecretCipher | None, what: str) -> str:
    """The secret behind a stored value: decrypted, or as it is when still in plain text
    (stored before encryption, or without keys where that is allowed)."""
    if is_plain(stored):
        return stored
    if cipher is None:
        raise EncryptionKeyError(f"A {what} in the database is encrypted, but {ENV} is not set.")
    return cipher.decrypt(stored, what)


def migration_cipher(attributes: Mapping[str, Any]) -> SecretCipher | None:
    """The keys `creditbot db upgrade` handed to a migration, else the environment's."""
    return SecretCipher.from_setting(attributes.get("encryption_keys") or os.environ.get(ENV, ""))


class EncryptedText(TypeDecorator[str]):
    """A secret column: encrypted on the way in, decrypted on the way out."""

    impl = Text
    cache_ok = True  # its one attribute, the cipher, is hashable (by identity)

    def __init__(self, cipher: SecretCipher) -> None:
        super().__init__()
        self.cipher = cipher

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.cipher.encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.cipher.decrypt(value)


# -- every stored secret at once: migrations, rotation, the checks ---------------------------


@dataclass(frozen=True)
class SecretColumns:
    """Where one kind of secret is kept: a table, its key column, its secret columns."""

    table: str
    key: str
    columns: tuple[str, ...]
    #: What one of them is called in messages.
    what: str

    def clause(self) -> sa.TableClause:
        return sa.table(self.table, sa.column(self.key), *(sa.column(c) for c in self.columns))


SLACK_TOKENS = (
    SecretColumns("slack_installations", "id",
                  ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token"),
                  "Slack token"),
    SecretColumns("slack_bots", "id", ("bot_token", "bot_refresh_token"), "Slack token"),
)  # fmt: skip
WEBHOOK_SECRETS = (SecretColumns("webhook_endpoints", "id", ("secret",), "webhook signing secret"),)
LINK_KEYS = (SecretColumns("server_secrets", "name", ("value",), "signed-link key"),)
#: Every secret creditbot keeps in its database, as rotation re-encrypts them.
ALL_SECRETS = SLACK_TOKENS + WEBHOOK_SECRETS + LINK_KEYS


@dataclass(frozen=True)
class StoredSecret:
    table: str
    row_id: Any
    column: str
    value: str
    what: str


def stored_secrets(
    connection: Connection, kinds: Iterable[SecretColumns] = ALL_SECRETS
) -> Iterator[StoredSecret]:
    """Every secret of `kinds` stored, as it is in the database."""
    for kind in kinds:
        table = kind.clause()
        for row in connection.execute(sa.select(table)).mappings():
            for column in kind.columns:
                if row[column] is not None:
                    yield StoredSecret(kind.table, row[kind.key], column, row[column], kind.what)


def _rewrite(
    connection: Connection,
    kinds: Iterable[SecretColumns],
    change: Callable[[StoredSecret], str],
) -> dict[str, int]:
    """Write `change(secret)` over every stored secret of `kinds`; how many, by what."""
    chosen = {kind.table: kind for kind in kinds}
    found = list(stored_secrets(connection, chosen.values()))
    new = [change(secret) for secret in found]  # all first: a key that fails changes nothing
    counts: dict[str, int] = {kind.what: 0 for kind in chosen.values()}
    for secret, value in zip(found, new, strict=True):
        kind = chosen[secret.table]
        table = kind.clause()
        connection.execute(
            sa.update(table)
            .where(table.c[kind.key] == secret.row_id)
            .values({secret.column: value})
        )
        counts[secret.what] += 1
    return counts


def rotate_secrets(
    connection: Connection, cipher: SecretCipher, kinds: Iterable[SecretColumns] = ALL_SECRETS
) -> dict[str, int]:
    """Re-encrypt every stored secret of `kinds` with the first key (encrypting any left
    in plain text). Returns how many were rewritten, by what they are."""
    return _rewrite(connection, kinds, lambda s: cipher.rotate(s.value, s.what))


def decrypt_secrets(
    connection: Connection, cipher: SecretCipher, kinds: Iterable[SecretColumns] = ALL_SECRETS
) -> dict[str, int]:
    """Put every stored secret of `kinds` back in plain text (the migrations' downgrades)."""
    return _rewrite(connection, kinds, lambda s: reveal(s.value, cipher, s.what))


@dataclass(frozen=True)
class Survey:
    """What is stored of some kinds of secret, and what of it is wrong."""

    stored: list[StoredSecret]
    #: Still in plain text.
    plain: list[StoredSecret]
    #: Encrypted, but no key given opens it (or no key is given at all).
    unreadable: list[StoredSecret]


def survey(
    connection: Connection, cipher: SecretCipher | None, kinds: Iterable[SecretColumns]
) -> Survey:
    """Every stored secret of `kinds`, sorted into plain, unreadable and fine."""
    stored = list(stored_secrets(connection, kinds))
    plain = [s for s in stored if is_plain(s.value)]
    unreadable = []
    for secret in stored:
        if is_plain(secret.value):
            continue
        try:
            reveal(secret.value, cipher, secret.what)
        except EncryptionKeyError:
            unreadable.append(secret)
    return Survey(stored, plain, unreadable)
