"""Exploration cost inside a loaded server against the same call in a tight loop.

    python -m bench.bench_select_in_server [--seconds 6]

Serves the service (uvicorn in this process, uvloop + httptools; Redis on a unix socket; the
movielens-100k-shaped snapshot of `bench.bench_service`) and wraps `Policy.select_many` (what
the service calls, once per batch of one event-loop iteration) with a thread-CPU timer. `wrk`
(16 connections) first gives the users state through /observe, then drives /predict k=10 with
Thompson sampling and with greedy (`explore=false`), one after the other. The same selections
are then timed in a tight loop on one user's posterior, alone (`select`) and in batches of
the mean size the server saw. The table gives CPU µs per selection (per request) each way:
how much more a selection costs with the rest of a request between two of its calls.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np
import uvicorn
import uvloop

import velox.policies.base as policy_base
from bench.bench_service import OBSERVE_LUA, PREDICT_LUA
from bench.service_fixture import DIM, N_ITEMS, bench_service_settings
from online.main import create_app
from online.settings import ServiceSettings
from tests.support.redis_server import free_port
from velox.catalog import ItemMatrix
from velox.policies import make_policy
from velox.posterior import UserPosterior

spent = {"cpu_ns": 0, "calls": 0, "requests": 0}

SelectMany = Callable[..., list[policy_base.Selection]]


def timed(select_many: SelectMany) -> SelectMany:
    """`select_many`, adding its thread CPU time, calls and requests to `spent`."""

    def wrapper(
        policy: policy_base.Policy, items: ItemMatrix, requests: list[object], **kwargs: object
    ) -> list[policy_base.Selection]:
        started = time.thread_time_ns()
        result = select_many(policy, items, requests, **kwargs)
        spent["cpu_ns"] += time.thread_time_ns() - started
        spent["calls"] += 1
        spent["requests"] += len(requests)
        return result

    return wrapper


def wrk(url: str, seconds: int, script: str, home: Path) -> None:
    """One bounded wrk run (16 connections, loopback)."""
    lua = home / "load.lua"
    lua.write_text(script)
    command = ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(lua), url]
    subprocess.run(command, capture_output=True, check=True)


def in_server(
    settings: ServiceSettings, home: Path, seconds: int
) -> dict[str, tuple[float, float]]:
    """(mean CPU µs per selected request, mean batch size) while wrk drives each /predict."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
        )
    )
    base = f"http://127.0.0.1:{port}"
    results: dict[str, tuple[float, float]] = {}

    def drive() -> None:
        while not server.started:
            time.sleep(0.05)
        wrk(f"{base}/observe", 3, OBSERVE_LUA, home)
        for name, script in (
            ("thompson", PREDICT_LUA),
            ("greedy", PREDICT_LUA.replace("k=10", "k=10&explore=false")),
        ):
            spent.update(cpu_ns=0, calls=0, requests=0)
            wrk(f"{base}/predict", seconds, script, home)
            requests = max(spent["requests"], 1)
            results[name] = (
                spent["cpu_ns"] / requests / 1000,
                requests / max(spent["calls"], 1),
            )
        server.should_exit = True

    threading.Thread(target=drive, daemon=True).start()
    uvloop.run(server.serve())
    return results


def tight_loop(batch_sizes: dict[str, int]) -> dict[str, tuple[float, float]]:
    """Best-of-7 µs per selection on one posterior with 100 observations: alone, and per
    request in batches of `batch_sizes[name]` requests."""
    rng = np.random.default_rng(0)
    items = ItemMatrix.from_features(rng.standard_normal((N_ITEMS, DIM)).astype(np.float32))
    posterior = UserPosterior.prior(rng.standard_normal(DIM), 1.0)
    for _ in range(100):
        posterior.update(rng.standard_normal(DIM), 1.0)
    results = {}
    for name in ("thompson", "greedy"):
        policy = make_policy(name, seed=1)
        batch = [policy.request(items, posterior, 10)] * batch_sizes[name]
        alone = timeit.repeat(lambda: policy.select(items, posterior, 10), number=500, repeat=7)  # noqa: B023
        many = timeit.repeat(lambda: policy.select_many(items, batch), number=100, repeat=7)  # noqa: B023
        results[name] = (min(alone) / 500 * 1e6, min(many) / 100 / len(batch) * 1e6)
    return results


def main() -> None:
    """Measure both ways and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    with bench_service_settings("velox-select-") as (settings, home):
        select_many = policy_base.Policy.select_many
        policy_base.Policy.select_many = timed(select_many)  # type: ignore[method-assign]
        served = in_server(settings, home, args.seconds)
        policy_base.Policy.select_many = select_many  # type: ignore[method-assign]
        asyncio.set_event_loop(None)
    loop = tight_loop({name: max(1, round(batch)) for name, (_, batch) in served.items()})
    print(f"{'policy':<10}{'mean batch':>11}{'in server us':>14}{'tight, batched':>16}"
          f"{'ratio':>8}{'tight, alone':>14}")  # fmt: skip
    for name in ("thompson", "greedy"):
        (cost, batch), (alone, batched) = served[name], loop[name]
        print(f"{name:<10}{batch:>11.1f}{cost:>14.1f}{batched:>16.1f}{cost / batched:>7.2f}x"
              f"{alone:>14.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
