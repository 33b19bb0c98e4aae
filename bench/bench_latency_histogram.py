"""CPU per request of /predict and /observe with and without the latency histogram, in-process.

    python -m bench.bench_latency_histogram [--rounds 150] [--multiprocess]

Two copies of the service app over one Redis and snapshot (bench.bench_app_cpu's setup): one
as built (each hot route timed into `velox_request_seconds`), one with the timing wrapper
taken off after start-up. Rounds of 16 concurrent requests alternate between them; the table
gives each one's median CPU per request and the timed/untimed ratio. `--multiprocess` runs
both with PROMETHEUS_MULTIPROC_DIR set, as `velox serve --workers N` does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import uvloop

from bench.bench_app_cpu import App, call, request_for
from bench.service_fixture import bench_service_settings
from online.direct_routes import DirectRoutesApp

ENDPOINTS = ("/predict", "/predict greedy", "/observe")


async def measure(
    timed: DirectRoutesApp, untimed: DirectRoutesApp, rounds: int
) -> dict[tuple[str, str], list[float]]:
    """Interleaved rounds per (variant, endpoint): CPU µs per request."""
    async with timed.router.lifespan_context(timed), untimed.router.lifespan_context(untimed):
        endpoints = untimed.direct_endpoints
        untimed.direct_endpoints = {k: getattr(v, "__wrapped__", v) for k, v in endpoints.items()}
        apps: dict[str, App] = {"timed": timed, "untimed": untimed}
        for _ in range(10):
            for _ in range(50):
                await call(timed, *request_for("/observe"))
        samples: dict[tuple[str, str], list[float]] = {
            (name, endpoint): [] for name in apps for endpoint in ENDPOINTS
        }
        for _ in range(rounds):
            for (name, endpoint), values in samples.items():
                requests = [request_for(endpoint) for _ in range(16)]
                started = time.process_time()
                for request in requests:
                    await call(apps[name], *request)
                values.append((time.process_time() - started) / 16 * 1e6)
        return samples


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--multiprocess", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        if args.multiprocess:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        from online.main import create_app  # after the variable: prometheus reads it on import

        with bench_service_settings("velox-latency-hist-") as (settings, _):
            samples = uvloop.run(measure(create_app(settings), create_app(settings), args.rounds))
    print(f"{'endpoint':<17}{'untimed us':>11}{'timed us':>10}{'timed/untimed':>15}")
    for endpoint in ENDPOINTS:
        untimed = statistics.median(samples[("untimed", endpoint)])
        timed = statistics.median(samples[("timed", endpoint)])
        print(f"{endpoint:<17}{untimed:>11.1f}{timed:>10.1f}{timed / untimed:>14.3f}x")


if __name__ == "__main__":
    main()
