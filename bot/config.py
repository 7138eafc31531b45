"""Configuration from environment variables (and a `.env` file when present)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.db import DEFAULT_URL


class Settings(BaseSettings):
    """Every setting creditbot reads. Names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = DEFAULT_URL
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    slack_client_id: str = ""
    slack_client_secret: str = ""
    #: Channel id for alerts of accounts that have not picked one in the App Home tab.
    slack_alert_channel: str = ""
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = "https://api.stripe.com"
    public_url: str = "http://localhost:3000"
    #: Key of the signed links creditbot hands out (chart images, statements). Empty: a
    #: secret creditbot makes once and keeps in the database.
    secret_key: str = ""
    port: int = 3000
    #: Run the scheduler inside `creditbot serve` (turn off when `creditbot scheduler` runs it).
    run_scheduler: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()
