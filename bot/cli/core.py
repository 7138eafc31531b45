"""`creditbot db upgrade` and `creditbot serve`."""

from __future__ import annotations

import click

from bot.cli.environment import console, context


def register(cli: click.Group) -> None:
    cli.add_command(db)
    cli.add_command(serve)


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision.")
def db_upgrade(revision: str) -> None:
    """Create or migrate the database named by DATABASE_URL (SQLite file by default)."""
    from ledger.migrate import upgrade

    ctx = context()
    upgrade(ctx.engine, revision)
    console.print(f"database at {ctx.engine.url.render_as_string()} is at revision {revision}")


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=None, help="Port (default: PORT, else 3000).")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn workers.")
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
def serve(host: str, port: int | None, workers: int, access_log: bool) -> None:
    """Serve Slack events, the Stripe webhook, the agent API and /healthz."""
    import uvicorn

    from bot.http.app import create_app

    ctx = context()
    port = port or ctx.settings.port
    if workers > 1:
        # Each worker process builds its own app (and engine) from the environment.
        from bot.http.serving import serve_workers

        serve_workers(host, port, workers, access_log=access_log)
        return
    from bot.http.serving import uvicorn_options

    app = create_app(ctx)
    uvicorn.run(app, host=host, port=port, **uvicorn_options(access_log=access_log))  # type: ignore[arg-type]
