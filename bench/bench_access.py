"""CPU per request of /predict and /observe with and without API keys, in one run.

    python -m bench.bench_access [--rounds 200] [--keys 3]

The same in-process measurement as bench/bench_app_cpu.py (real Redis, the bench snapshot,
interleaved rounds of 16 concurrent ASGI calls, process time): the service with no key
configured (nothing is checked) beside the same service with `--keys` keys including a read
key, so every /predict and /observe is checked (header scan, one SHA-256, one
`hmac.compare_digest` per key). The last column is the keyed median over the open median.
A last table times the check alone (`AccessGate.refusal` of a keyed /predict, process time,
best of 5) for 3 to 30 keys.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import timeit
from typing import Any

import uvloop
from pydantic import SecretStr

from bench.bench_app_cpu import App, call, request_for
from bench.bench_app_cpu import scope as http_scope
from bench.service_fixture import bench_service_settings
from online.access import AccessGate, KeyRing, parse_keys
from online.main import create_app

ROLES = ("read", "write", "admin")


def keys_text(count: int) -> tuple[str, str]:
    """`count` keys (roles in turn, a read key first) as VELOX_API_KEYS, and the admin key."""
    entries = [f"{ROLES[i % 3]}:bench-key-{i:04d}-0123456789abcdef" for i in range(count)]
    admin = next(e for e in entries if e.startswith("admin:")).partition(":")[2]
    return ",".join(entries), admin


def with_key(request: dict[str, Any], key: str) -> dict[str, Any]:
    """`request` with `Authorization: Bearer key` added to its headers."""
    headers = [*request["headers"], (b"authorization", f"Bearer {key}".encode())]
    return {**request, "headers": headers}


async def measure(
    apps: dict[str, App], key: str, rounds: int
) -> dict[tuple[str, str], list[float]]:
    """Interleaved rounds of 16 concurrent requests per (app, endpoint): CPU us per request."""
    open_app, keyed = apps["no keys"], apps["keys"]
    async with (
        open_app.router.lifespan_context(open_app),  # type: ignore[attr-defined]
        keyed.router.lifespan_context(keyed),  # type: ignore[attr-defined]
    ):
        for _ in range(20):  # give users state
            await asyncio.gather(*(call(open_app, *request_for("/observe")) for _ in range(50)))
        pairs = [(name, endpoint) for endpoint in ("/predict", "/observe") for name in apps]
        samples: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
        for _ in range(rounds):
            for name, endpoint in pairs:
                requests = [request_for(endpoint) for _ in range(16)]
                if name == "keys":
                    requests = [(with_key(scope, key), body) for scope, body in requests]
                started = time.process_time()
                await asyncio.gather(*(call(apps[name], *r) for r in requests))
                samples[(name, endpoint)].append((time.process_time() - started) / 16 * 1e6)
        return samples


def gate_cost_us(count: int, number: int = 50_000) -> float:
    """CPU microseconds of one access check of a /predict call with `count` keys configured."""
    text, admin = keys_text(count)
    gate = AccessGate(KeyRing.of(parse_keys(text, "bench")))
    request = with_key(http_scope("/predict", b"user=u1&k=10"), admin)
    runs = timeit.repeat(
        lambda: gate.refusal(request), number=number, repeat=5, timer=time.process_time
    )
    return min(runs) / number * 1e6


def main() -> None:
    """Start Redis, publish the snapshot, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--keys", type=int, default=3)
    args = parser.parse_args()
    if args.keys < 3:
        parser.error("--keys must be at least 3 (one of each role)")
    text, admin = keys_text(args.keys)
    with bench_service_settings("velox-access-") as (settings, _):
        keyed = settings.model_copy(update={"api_keys": SecretStr(text)})
        apps: dict[str, App] = {"no keys": create_app(settings), "keys": create_app(keyed)}
        samples = uvloop.run(measure(apps, admin, args.rounds))
    print(f"{'endpoint':<10}{'app':<9}{'min us':>8}{'p10 us':>8}{'median us':>10}{'vs open':>9}")
    for endpoint in ("/predict", "/observe"):
        base = statistics.median(samples[("no keys", endpoint)])
        for name in ("no keys", "keys"):
            values = sorted(samples[(name, endpoint)])
            median = statistics.median(values)
            print(f"{endpoint:<10}{name:<9}{values[0]:>8.1f}{values[len(values) // 10]:>8.1f}"
                  f"{median:>10.1f}{median / base:>8.3f}x")  # fmt: skip
    print(f"\n{'keys':<6}{'check alone us':>15}")
    for count in (3, 10, 30):
        print(f"{count:<6}{gate_cost_us(count):>15.2f}")


if __name__ == "__main__":
    main()
