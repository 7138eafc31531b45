"""GET /metrics: Prometheus' text format, for a scraper that sends the bearer token in
METRICS_TOKEN (docs/operations.md). Without the setting the route is off (404), so a
server is never found exposing its numbers by accident."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from bot import metrics
from bot.context import AppContext
from bot.http.errors import error_response


def register(app: FastAPI, context: AppContext) -> None:
    database = metrics.DatabaseCollector(context)

    def read_metrics(request: Request) -> Response:
        """The metrics of this process (or of every worker) and the database's gauges."""
        token = context.settings.metrics_token
        if not token:
            return error_response(404, "metrics_off", "Metrics are off: set METRICS_TOKEN.")
        if not metrics.authorised(token, request.headers.get("authorization", "")):
            return error_response(
                401, "unauthorised", "Send Authorization: Bearer <METRICS_TOKEN>.",
                {"WWW-Authenticate": 'Bearer realm="metrics"'},
            )  # fmt: skip
        return Response(metrics.exposition(context, database), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", read_metrics, methods=["GET"], include_in_schema=False)
