"""Configuration from environment variables (and a `.env` file when present).

The default database is a SQLite file in creditbot's data directory, the same wherever a
command is started: `$CREDITBOT_HOME` when set, else the platform's user data directory
(`$XDG_DATA_HOME/creditbot`, by default `~/.local/share/creditbot`, on Linux).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: What `PUBLIC_URL` is when nobody set it (only this machine can reach it).
DEFAULT_PUBLIC_URL = "http://localhost:3000"
DATABASE_FILE = "creditbot.db"


def data_dir(home: str | Path | None = None) -> Path:
    """Where creditbot keeps its files: `home` (CREDITBOT_HOME) or the user data directory."""
    if home:
        return Path(home).expanduser()
    return Path(user_data_dir("creditbot", appauthor=False))


def default_database_url(home: str | Path | None = None) -> str:
    return f"sqlite:///{data_dir(home) / DATABASE_FILE}"


def _database_url(data: dict[str, Any]) -> str:
    return default_database_url(data.get("creditbot_home"))


class Settings(BaseSettings):
    """Every setting creditbot reads. Names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    #: creditbot's data directory (default: the platform's user data directory).
    creditbot_home: str = ""
    database_url: str = Field(default_factory=_database_url)
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    slack_client_id: str = ""
    slack_client_secret: str = ""
    #: Channel id for alerts of accounts that have not picked one in the App Home tab.
    slack_alert_channel: str = ""
    #: Fernet keys, comma-separated, for the Slack tokens of OAuth installs: the first
    #: encrypts, all decrypt (ledger/slack_tokens.py).
    creditbot_encryption_keys: str = ""
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = "https://api.stripe.com"
    public_url: str = DEFAULT_PUBLIC_URL
    #: Key of the signed links creditbot hands out (chart images, statements). Empty: a
    #: secret creditbot makes once and keeps in the database.
    secret_key: str = ""
    port: int = 3000
    #: Run the scheduler inside `creditbot serve` (turn off when `creditbot scheduler` runs it).
    run_scheduler: bool = True
    #: Seconds a client of `creditbot serve` may take to send its request headers, or pause
    #: while sending a body, before the connection is closed (or the request answered 408).
    http_read_timeout: float = Field(default=10.0, gt=0, le=3600)
    #: Open connections one `creditbot serve` process keeps at most (also kept under the
    #: process's open-file limit); past it the connection idle the longest is closed.
    http_max_connections: int = Field(default=4096, ge=1)


@lru_cache
def get_settings() -> Settings:
    return Settings()
