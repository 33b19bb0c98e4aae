"""CPU per request of the service's ASGI app in-process: FastAPI routing vs direct dispatch.

    python -m bench.bench_app_cpu [--rounds 200]

No sockets between client and app (each request is an ASGI call), so the figure is the app's
own CPU: framework, validation, Redis client, scoring, exploration, response. Redis is real
(a redis-server on a unix socket, AOF everysec, as the embedded default). Three apps share
the process and the snapshot (movielens-100k shape: 1682 items, 943 users, d = 18): the
hello-world FastAPI endpoint of `bench.bench_service` (the baseline), the service as built
(hot routes served directly, in front of the middleware), and the same service without (every
request through FastAPI's routing). Rounds of 16 concurrent requests are interleaved across
apps and endpoints; the table gives the minimum, 10th percentile and median of each one's
CPU per request (process time: a loaded machine inflates it, rarely deflates it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from fastapi import FastAPI

from bench.bench_service import hello_app
from bench.service_fixture import N_ITEMS, N_USERS, bench_service_settings
from online.main import create_app

Message = dict[str, Any]
App = Callable[..., Awaitable[None]]
"""An ASGI application."""


def scope(path: str, query: bytes, method: str = "GET", body: bytes = b"") -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it."""
    headers = [(b"host", b"127.0.0.1")]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip


async def call(app: App, request: dict[str, Any], body: bytes) -> None:
    """One ASGI call; fails unless the answer is 200."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(request, receive, send)
    assert sent[0]["status"] == 200, sent


def request_for(endpoint: str) -> tuple[dict[str, Any], bytes]:
    """A random request of one kind."""
    user = f"u{random.randrange(N_USERS)}"
    if endpoint == "/predict":
        return scope("/predict", f"user={user}&k=10".encode()), b""
    if endpoint == "/predict greedy":
        return scope("/predict", f"user={user}&k=10&explore=false".encode()), b""
    if endpoint == "/observe":
        item = f"i{random.randrange(N_ITEMS)}"
        body = f'{{"user":"{user}","item":"{item}","reward":{random.randint(1, 5)}}}'.encode()
        return scope("/observe", b"", "POST", body), body
    return scope("/hello", b""), b""


async def measure(apps: dict[str, FastAPI], rounds: int) -> dict[tuple[str, str], list[float]]:
    """Interleaved rounds of 16 concurrent requests per (app, endpoint): CPU us per request."""
    velox = [app for name, app in apps.items() if name != "hello world"]
    async with (
        velox[0].router.lifespan_context(velox[0]),
        velox[1].router.lifespan_context(velox[1]),
    ):
        for _ in range(20):  # give users state
            await asyncio.gather(*(call(velox[0], *request_for("/observe")) for _ in range(50)))
        pairs = [("hello world", "/hello")] + [
            (name, endpoint)
            for name in apps if name != "hello world"
            for endpoint in ("/predict", "/predict greedy", "/observe")
        ]  # fmt: skip
        samples: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
        for _ in range(rounds):
            for name, endpoint in pairs:
                requests = [request_for(endpoint) for _ in range(16)]
                started = time.process_time()
                await asyncio.gather(*(call(apps[name], *r) for r in requests))
                samples[(name, endpoint)].append((time.process_time() - started) / 16 * 1e6)
        return samples


def main() -> None:
    """Start Redis, publish the snapshot, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with bench_service_settings("velox-app-cpu-") as (settings, _):
        routed = create_app(settings)
        routed.direct_endpoints = {}
        apps = {"hello world": hello_app, "direct": create_app(settings), "fastapi": routed}
        samples = uvloop.run(measure(apps, args.rounds))
    hello = statistics.median(samples[("hello world", "/hello")])
    print(f"{'app':<12}{'endpoint':<17}{'min us':>8}{'p10 us':>8}{'median us':>10}{'vs hello':>9}")
    for (name, endpoint), values in samples.items():
        values.sort()
        median = statistics.median(values)
        print(f"{name:<12}{endpoint:<17}{values[0]:>8.1f}{values[len(values) // 10]:>8.1f}"
              f"{median:>10.1f}{median / hello:>8.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
