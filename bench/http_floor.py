"""The HTTP floor: the least any Python service on this stack pays for a charge request.

A bare Starlette app on the same uvicorn stack as `creditbot serve` (served by the same
`bot.http.serving.serve`: httptools and uvloop, the same connection limits, one worker)
that reads the same JSON body a message charge sends, parses it and answers a small JSON. bench/api_charge.py starts it next to the real
server and loads both with the same client in the same run.

    python bench/http_floor.py --port 3001
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402


async def messages(request: Request) -> Response:
    body = json.loads(await request.body())
    return JSONResponse(
        {"allowed": True, "agent_id": body["agent_id"], "quantity": body["quantity"]}
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)


def main() -> None:
    from bot.config import Settings
    from bot.http.serving import serve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(Settings(), args.host, args.port, app=app)


if __name__ == "__main__":
    main()
