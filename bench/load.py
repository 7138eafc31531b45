"""A lean HTTP/1.1 load client for the benchmarks: keep-alive connections, one request in
flight on each, every request with its own Idempotency-Key, latency of each recorded.

Written on bare asyncio streams rather than aiohttp so the client costs as little CPU as
possible on a machine it shares with the server it measures (aiohttp spends several times
more per request, which the server then loses).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field


@dataclass
class Target:
    """Who a connection charges: the API key and the agent (one per connection index)."""

    secret: str
    agent_id: int


@dataclass
class Load:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        """The p-th percentile latency, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def _request(host: str, port: int, target: Target, key: str) -> bytes:
    body = json.dumps(
        {"agent_id": target.agent_id, "quantity": 1, "direction": "outbound"}
    ).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {target.secret}\r\nIdempotency-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def charge_load(
    host: str, port: int, targets: list[Target], clients: int, seconds: float, tag: str,
    warmup: float = 0.3,
) -> Load:  # fmt: skip
    """`clients` connections charging one message per request for `seconds` (after a short
    warm-up); connection n charges targets[n % len(targets)]."""
    keys = itertools.count()
    load = Load()

    async def client(n: int, start: float, until: float) -> None:
        target = targets[n % len(targets)]
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                now = time.perf_counter()
                if now >= until:
                    break
                status = await _one(
                    reader, writer, _request(host, port, target, f"{tag}-{next(keys)}")
                )
                done = time.perf_counter()
                if now >= start:
                    load.requests += 1
                    load.latencies.append(done - now)
                    load.statuses[status] = load.statuses.get(status, 0) + 1
        finally:
            writer.close()

    begin = time.perf_counter()
    start = begin + warmup
    until = start + seconds
    await asyncio.gather(*(client(n, start, until) for n in range(clients)))
    load.seconds = seconds
    return load


async def aiohttp_load(
    host: str, port: int, targets: list[Target], clients: int, seconds: float, tag: str,
    warmup: float = 0.3,
) -> Load:  # fmt: skip
    """As `charge_load`, with aiohttp's client (what the issue's baseline figures used)."""
    import aiohttp

    keys = itertools.count()
    load = Load()
    url = f"http://{host}:{port}/v1/messages"

    async def client(session: aiohttp.ClientSession, n: int, start: float, until: float) -> None:
        target = targets[n % len(targets)]
        body = {"agent_id": target.agent_id, "quantity": 1, "direction": "outbound"}
        auth = {"Authorization": f"Bearer {target.secret}"}
        while True:
            now = time.perf_counter()
            if now >= until:
                break
            headers = {**auth, "Idempotency-Key": f"{tag}-{next(keys)}"}
            async with session.post(url, json=body, headers=headers) as response:
                await response.read()
                status = response.status
            done = time.perf_counter()
            if now >= start:
                load.requests += 1
                load.latencies.append(done - now)
                load.statuses[status] = load.statuses.get(status, 0) + 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        begin = time.perf_counter()
        start = begin + warmup
        until = start + seconds
        await asyncio.gather(*(client(session, n, start, until) for n in range(clients)))
    load.seconds = seconds
    return load
