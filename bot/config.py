"""Configuration from environment variables (and a `.env` file when present).

The default database is a SQLite file in creditbot's data directory, the same wherever a
command is started: `$CREDITBOT_HOME` when set, else the platform's user data directory
(`$XDG_DATA_HOME/creditbot`, by default `~/.local/share/creditbot`, on Linux).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

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
    #: Fernet keys, comma-separated, for the secrets the database keeps (Slack tokens,
    #: webhook signing secrets, the signed-link key): the first encrypts, all decrypt
    #: (ledger/secrets_at_rest.py).
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
    #: Logs: `json`, `text`, or `auto` (text on a terminal, JSON otherwise); and the level.
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: Bearer token Prometheus sends to read /metrics; empty: /metrics is off (404).
    metrics_token: str = ""
    #: Port on which `creditbot scheduler` (run alone) serves /metrics; 0: it does not.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    #: Alert emails over SMTP (off while SMTP_HOST is empty). SMTP_SECURITY: `starttls`
    #: (required), `ssl` (TLS from the start, port 465), `none`, or `auto` (ssl on 465,
    #: else STARTTLS when the server offers it).
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_security: Literal["auto", "starttls", "ssl", "none"] = "auto"
    #: What finance gets for a top-up: `receipt` (Stripe emails a receipt to the Stripe
    #: customer's email, the one typed at the first Checkout or set in the Customer Portal),
    #: `invoice` (Checkout top-ups also make a paid Stripe invoice, emailed and kept in the
    #: Customer Portal; Stripe charges for invoices), or `none` (Stripe's Dashboard decides).
    stripe_topup_receipts: Literal["receipt", "invoice", "none"] = "receipt"


@lru_cache
def get_settings() -> Settings:
    return Settings()
