"""The API's /docs and /redoc pages load everything from creditbot itself: they work on a
machine with no Internet access."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from bot.config import Settings
from bot.context import AppContext
from bot.http.app import create_app
from ledger.db import make_engine


def test_docs_pages_need_nothing_from_outside(sqlite_url):
    context = AppContext(Settings(database_url=sqlite_url, run_scheduler=False),
                         make_engine(sqlite_url))  # fmt: skip
    try:
        with TestClient(create_app(context)) as client:
            for page, script in (
                ("/docs", "swagger-ui-bundle.js"),
                ("/redoc", "redoc.standalone.js"),
            ):
                html = client.get(page).text
                assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), page
                assets = re.findall(r"""(?:src|href)=["']?([^"' >]+)""", html)
                assert any(a.endswith(script) for a in assets), (page, assets)
                for asset in assets:
                    answer = client.get(asset)
                    assert answer.status_code == 200, asset
                    assert len(answer.content) > 1000, asset
            assert client.get("/openapi.json").status_code == 200
    finally:
        context.engine.dispose()
