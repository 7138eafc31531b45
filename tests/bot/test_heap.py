"""While the app serves, what startup built is out of the garbage collector's full passes
(bot/http/heap.py): a full collection stops every charge in flight for as long as it
walks, and it no longer walks the app."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from bot.config import Settings
from bot.context import AppContext
from bot.http.app import create_app
from ledger.db import make_engine


def tracked(obj: object) -> bool:
    """Whether a collection of any generation walks `obj` (frozen objects are in none)."""
    return any(o is obj for o in gc.get_objects())


def test_the_started_app_is_left_out_of_full_collections_and_back_in_once_stopped(db_url):
    settings = Settings(database_url=db_url, run_scheduler=False, slack_bot_token="")
    context = AppContext(settings=settings, engine=make_engine(db_url))
    app = create_app(context)
    assert tracked(app)  # built, not yet started: walked like any object
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert not tracked(app)
        assert not tracked(context.engine)
        assert gc.get_freeze_count() > 10_000  # the startup heap, not a handful of objects
        served_since = ["made while serving"]
        assert tracked(served_since)  # what serving makes is collected as ever
    assert tracked(app)
    assert gc.get_freeze_count() == 0
    context.engine.dispose()
