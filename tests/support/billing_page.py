"""The billing page in a test: an app over a SQLite database, the customer document's
story (and an agent named like markup), an https client, single-use sign-in links and the
page's CSRF token. Test modules import the fixtures."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.context import AppContext
from bot.http.app import create_app
from ledger.agents import add_agent
from ledger.cycles import utcnow
from ledger.db import make_engine, transaction
from ledger.web_access import issue_sign_in_link
from tests.support.factories import story


@pytest.fixture
def context(sqlite_url):
    ctx = AppContext(settings=Settings(database_url=sqlite_url, run_scheduler=False, _env_file=None),
                     engine=make_engine(sqlite_url))  # fmt: skip
    yield ctx
    ctx.engine.dispose()


@pytest.fixture
def ids(context):
    ids = story(context.sessions, now=utcnow() - timedelta(days=2))
    evil = transaction(
        context.sessions,
        lambda s: add_agent(s, ids["account"], "<script>alert(1)</script> & co").id,
    )
    return {**ids, "evil": evil}


@pytest.fixture
def client(context):
    # https: the session cookie is Secure, and a client sends it only over https
    with TestClient(create_app(context), base_url="https://testserver") as client:
        yield client


def link(context, account, user="UADMIN", can_edit=True, now=None):
    return transaction(
        context.sessions, lambda s: issue_sign_in_link(s, account, user, can_edit=can_edit, now=now)
    )


def sign_in(client, context, account, **kw):
    answer = client.get(
        f"/billing/{account}/sign-in/{link(context, account, **kw)}", follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"/billing/{account}"
    return answer


def csrf(page_html):
    return re.search(r'name="csrf" value="([^"]+)"', page_html).group(1)
