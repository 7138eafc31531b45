"""Reading a request body's next message within the read timeout
(bot/http/body_limit.receive_within): a message already there is taken at once, one that
comes later is waited for, one that never comes is a 408, and a cancelled request stops
waiting."""

from __future__ import annotations

import asyncio

import pytest
from starlette.exceptions import HTTPException

from bot.http.body_limit import receive_within

BODY = {"type": "http.request", "body": b'{"agent_id": 1}', "more_body": False}


def test_a_message_already_there_is_taken():
    async def receive():
        return BODY

    assert asyncio.run(receive_within(receive, 5)) == BODY


def test_a_message_that_comes_later_is_waited_for():
    async def main():
        arrived = asyncio.Event()

        async def receive():
            await arrived.wait()
            return BODY

        asyncio.get_running_loop().call_later(0.05, arrived.set)
        return await receive_within(receive, 5)

    assert asyncio.run(main()) == BODY


def test_a_message_that_never_comes_is_a_408():
    async def receive():
        await asyncio.Event().wait()

    with pytest.raises(HTTPException) as refused:
        asyncio.run(receive_within(receive, 0.05))
    assert refused.value.status_code == 408
    assert refused.value.headers == {"Connection": "close"}


def test_a_cancelled_request_stops_waiting():
    stopped: list[str] = []

    async def main():
        async def receive():
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                stopped.append("receive")
                raise

        reading = asyncio.create_task(receive_within(receive, 5))
        await asyncio.sleep(0.01)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading

    asyncio.run(main())
    assert stopped == ["receive"]
