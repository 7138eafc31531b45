"""The process-wide pieces every adapter shares: settings, engine, session factory, and the
cipher of the secrets kept in the database."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings, get_settings
from ledger.db import make_engine, make_session_factory
from ledger.secrets_at_rest import SecretCipher


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = make_session_factory(self.engine)


def build_context(settings: Settings | None = None) -> AppContext:
    settings = settings or get_settings()
    return AppContext(settings=settings, engine=make_engine(settings.database_url))


def secrets_cipher(context: AppContext) -> SecretCipher | None:
    """The cipher for CREDITBOT_ENCRYPTION_KEYS (None when it is not set). Raises
    EncryptionKeyError when a key is not a Fernet key."""
    return SecretCipher.from_setting(context.settings.creditbot_encryption_keys)
