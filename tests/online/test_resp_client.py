"""The lean RESP client: URLs, pipelining, timeouts and reconnection, on real sockets."""

from __future__ import annotations

import asyncio
import socket

import hiredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from online.resp_client import RedisAddress, RespClient
from tests.support.redis_server import RedisServer


def test_urls_are_parsed() -> None:
    assert RedisAddress.from_url("redis://127.0.0.1:6390/2") == RedisAddress(
        host="127.0.0.1", port=6390, db=2
    )
    assert RedisAddress.from_url("rediss://bob:s%40cret@cache:7000") == RedisAddress(
        host="cache",
        port=7000,
        tls=True,
        username="bob",
        password="s@cret",  # noqa: S106
    )
    unix = RedisAddress.from_url("unix:///run/redis.sock?db=3&password=pw")
    assert unix == RedisAddress(unix_path="/run/redis.sock", db=3, password="pw")  # noqa: S106
    assert unix.login_commands() == [("AUTH", "pw"), ("SELECT", 3)]


def test_pipelines_keep_their_replies_apart(redis_url: str) -> None:
    async def body() -> list[list[object]]:
        client = RespClient(RedisAddress.from_url(redis_url))
        try:
            await client.execute("SET", "a", "1")
            return list(
                await asyncio.gather(
                    *[
                        client.pipeline([("INCR", "a"), ("GET", "missing"), ("PING",)])
                        for _ in range(50)
                    ]
                )
            )
        finally:
            await client.close()

    replies = asyncio.run(body())
    assert sorted(int(r[0]) for r in replies) == list(range(2, 52))  # type: ignore[call-overload]
    assert all(r[1:] == [None, b"PONG"] for r in replies)


def test_error_replies_are_returned_in_place(redis_url: str) -> None:
    async def body() -> list[object]:
        client = RespClient(RedisAddress.from_url(redis_url))
        try:
            return await client.pipeline([("NOSUCHCOMMAND",), ("PING",)])
        finally:
            await client.close()

    error, pong = asyncio.run(body())
    assert isinstance(error, hiredis.ReplyError)
    assert pong == b"PONG"


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        async def body() -> None:
            client = RespClient(RedisAddress(host="127.0.0.1", port=port), timeout_s=0.2)
            try:
                await client.pipeline([("PING",)])
            finally:
                await client.close()

        with pytest.raises(RedisTimeoutError):
            asyncio.run(body())


def test_reconnects_after_the_server_restarts(tmp_path: object) -> None:
    from pathlib import Path

    server = RedisServer(Path(str(tmp_path)))
    server.start()

    async def body() -> object:
        client = RespClient(RedisAddress.from_url(server.url))
        try:
            await client.execute("PING")
            server.stop()
            with pytest.raises(RedisConnectionError):
                await client.execute("PING")
            server.start()
            return await client.execute("PING")
        finally:
            await client.close()

    try:
        assert asyncio.run(body()) == b"PONG"
    finally:
        server.stop()


def test_deferred_commands_keep_their_order_and_are_never_dropped(redis_url: str) -> None:
    async def body() -> list[object]:
        client = RespClient(RedisAddress.from_url(redis_url))
        await client.execute("PING")
        client.send_nowait([("SET", "a", "1")])
        (rides_along,) = await client.pipeline([("GET", "a")])  # carries the deferred SET
        client.send_nowait([("SET", "b", "2")])
        await asyncio.sleep(0.05)  # the timer sends it without any pipeline
        other = RespClient(RedisAddress.from_url(redis_url))
        (by_timer,) = await other.pipeline([("GET", "b")])
        client.send_nowait([("SET", "c", "3")])
        await client.close()  # sends what is deferred before closing
        (at_close,) = await other.pipeline([("GET", "c")])
        await other.close()
        return [rides_along, by_timer, at_close, client.round_trips]

    assert asyncio.run(body()) == [b"1", b"2", b"3", 3]
