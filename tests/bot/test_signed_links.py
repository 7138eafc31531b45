"""Signed links: made by one replica, accepted by another on the same database; refused
once altered or expired; SECRET_KEY, when set, is the key."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from bot.config import Settings
from bot.context import AppContext
from bot.signed_links import signed_url, valid
from ledger.cycles import utcnow
from ledger.db import make_engine


def make_context(url, **extra):
    return AppContext(settings=Settings(database_url=url, _env_file=None, public_url="https://cb.example", **extra),
                      engine=make_engine(url))  # fmt: skip


def parts(link):
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    return urlsplit(link).path, query


def test_links_are_checked_by_any_replica_and_refused_when_altered_or_expired(sqlite_url):
    one, two = make_context(sqlite_url), make_context(sqlite_url)
    now = utcnow()
    link = signed_url(one, "/usage/1/chart.png", {"to": "2026-11-10"}, now=now)
    assert link.startswith("https://cb.example/usage/1/chart.png?to=2026-11-10&expires=")
    path, q = parts(link)
    assert valid(two, path, {"to": q["to"]}, q["expires"], q["signature"], now=now)
    assert not valid(two, path, {"to": "2026-11-11"}, q["expires"], q["signature"], now=now)
    assert not valid(
        two, "/usage/2/chart.png", {"to": q["to"]}, q["expires"], q["signature"], now=now
    )
    assert not valid(
        two, path, {"to": q["to"]}, q["expires"], q["signature"], now=now + timedelta(hours=2)
    )
    assert not valid(
        two, path, {"to": q["to"]}, str(int(q["expires"]) + 600), q["signature"], now=now
    )
    keyed = make_context(sqlite_url, secret_key="from-the-environment")
    assert not valid(keyed, path, {"to": q["to"]}, q["expires"], q["signature"], now=now)
    for ctx in (one, two, keyed):
        ctx.engine.dispose()
