"""`creditbot db upgrade` and `creditbot serve`."""

from __future__ import annotations

import click

from bot.cli.environment import DatabaseNotReady, console, context
from bot.context import build_context
from bot.database import shown_url, sqlite_file, unreachable


def register(cli: click.Group) -> None:
    cli.add_command(db)
    cli.add_command(serve)


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision.")
def db_upgrade(revision: str) -> None:
    """Create or migrate the database named by DATABASE_URL (by default a SQLite file in
    the data directory: $CREDITBOT_HOME, or ~/.local/share/creditbot)."""
    from sqlalchemy.exc import DBAPIError

    from ledger.migrate import head_revision, upgrade
    from ledger.slack_tokens import EncryptionKeyError

    ctx = build_context()
    path = sqlite_file(ctx.engine.url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(ctx.engine, revision, encryption_keys=ctx.settings.creditbot_encryption_keys)
    except EncryptionKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    except DBAPIError as exc:
        state = unreachable(ctx.engine.url, exc)
        raise DatabaseNotReady(state.problem or "", state.hint) from exc
    finally:
        ctx.engine.dispose()
    at = head_revision() if revision == "head" else revision
    console.print(f"database at {shown_url(ctx.engine.url)} is at revision {at}")


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=None, help="Port (default: PORT, else 3000).")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn workers.")
def serve(host: str, port: int | None, workers: int) -> None:
    """Serve Slack events, the Stripe webhook, the agent API and /healthz.

    Once it answers, it logs what `creditbot doctor` finds (Slack, Stripe, PUBLIC_URL, ...).

    Connections are bounded (HTTP_MAX_CONNECTIONS, HTTP_READ_TIMEOUT): see docs/security.md
    for what a reverse proxy in front should add. Logs are JSON lines unless stderr is a
    terminal (LOG_FORMAT); /metrics answers with METRICS_TOKEN (docs/operations.md)."""
    from bot.http.app import create_app
    from bot.http.serving import serve as serve_http
    from bot.http.startup_report import report_when_serving
    from bot.logs import configure_logging
    from bot.secrets_at_rest import link_key_problem
    from bot.slack.installations import encryption_key_problem

    ctx = context()
    configure_logging(ctx.settings.log_format, ctx.settings.log_level)
    # Stored Slack tokens or link key it could not use.
    problem = encryption_key_problem(ctx) or link_key_problem(ctx)
    if problem:
        raise click.ClickException(problem)
    port = port or ctx.settings.port
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    report_when_serving(ctx, f"http://{local}:{port}")
    # Each worker process builds its own app (and engine) from the environment.
    app = create_app(ctx) if workers <= 1 else None
    serve_http(ctx.settings, host, port, workers=workers, app=app)
