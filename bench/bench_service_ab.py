"""A/B of the service from two source trees, with short alternating wrk bursts, beside hello world.

    python -m bench.bench_service_ab --trees /tmp/base,. [--bursts 10] [--seconds 3]
        [--endpoint thompson|greedy|observe]

Why: on a shared machine the load drifts by 20-30 % between the 10-second runs of
bench_service.py, more than most changes are worth. Here every tree's service (`velox serve`
with that tree first on PYTHONPATH, each with its own redis-server and the movielens-100k-shaped
snapshot) and a hello-world FastAPI app run at once; each burst loads hello world and then every
tree for `--seconds` (the trees' order alternating), so that each pair of figures compared was
measured seconds apart. A tree is a checkout of this repository (`git worktree add DIR COMMIT`,
with its compiled `velox/_kernels*.so` copied or built in place). Prints the median req/s per
server, its ratio to hello world, and with two trees the median of the paired ratios
second / first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.bench_service import OBSERVE_LUA, PREDICT_LUA, run_wrk, start_server, stop
from bench.service_fixture import bench_service_settings
from tests.support.redis_server import free_port

ENDPOINTS = {
    "thompson": ("/predict", PREDICT_LUA),
    "greedy": ("/predict", PREDICT_LUA.replace("k=10", "k=10&explore=false")),
    "observe": ("/observe", OBSERVE_LUA),
}


def _clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    env.update(values)
    return env


@contextmanager
def tree_service(tree: Path) -> Iterator[str]:
    """The base URL of `velox serve` run from `tree`, over its own Redis; stopped on exit."""
    with bench_service_settings("velox-ab-") as (settings, home):
        env = _clean_env(
            PYTHONPATH=str(tree), VELOX_HOME=str(home), VELOX_MODEL=settings.model,
            VELOX_REDIS_URL=str(settings.redis_url),
        )  # fmt: skip
        port = free_port()
        command = [sys.executable, "-c", "from velox.cli import main; main()", "serve"]
        process = start_server(
            [*command, "--port", str(port)], env, f"http://127.0.0.1:{port}/readyz"
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


@contextmanager
def hello_service() -> Iterator[str]:
    """The URL of bench_service's hello-world app under uvicorn; stopped on exit."""
    port = free_port()
    env = _clean_env(VELOX_HOME=tempfile.mkdtemp(prefix="velox-ab-hello-"))
    process = start_server(
        [sys.executable, "-m", "uvicorn", "bench.bench_service:hello_app", "--port", str(port),
         "--log-level", "warning", "--loop", "uvloop", "--http", "httptools", "--no-access-log"],
        env, f"http://127.0.0.1:{port}/hello",
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/hello"
    finally:
        stop(process)


def main() -> None:
    """Start every server, run the alternating bursts and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", required=True, help="comma-separated source trees")
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="thompson")
    args = parser.parse_args()
    trees = [Path(tree).resolve() for tree in args.trees.split(",")]
    missing = [str(tree) for tree in trees if not (tree / "online").is_dir()]
    if missing:
        sys.exit(f"not a Velox source tree: {', '.join(missing)}")
    path, script = ENDPOINTS[args.endpoint]
    with ExitStack() as stack:
        hello = stack.enter_context(hello_service())
        bases = [stack.enter_context(tree_service(tree)) for tree in trees]
        for base in bases:  # give the users stored state, as bench_service does
            run_wrk("warm-up", base + "/observe", 3, args.connections, OBSERVE_LUA)
        rates: dict[str, list[float]] = {"hello world": []}
        rates.update({str(tree): [] for tree in trees})
        for burst in range(args.bursts):
            rates["hello world"].append(
                run_wrk("hello", hello, args.seconds, args.connections, None).requests_per_s
            )
            order = list(zip(trees, bases, strict=True))
            for tree, base in order if burst % 2 == 0 else order[::-1]:
                result = run_wrk(str(tree), base + path, args.seconds, args.connections, script)
                rates[str(tree)].append(result.requests_per_s)
    print_table(rates, args.endpoint)


def print_table(rates: dict[str, list[float]], endpoint: str) -> None:
    """Median req/s per server and vs hello world; paired ratios for two trees."""
    hello = statistics.median(rates["hello world"])
    print(f"{'server':<40}{'median req/s':>13}{'x hello':>9}  every burst")
    for name, values in rates.items():
        label = name if name == "hello world" else f"{name} ({endpoint})"
        median = statistics.median(values)
        bursts = " ".join(f"{value:.0f}" for value in values)
        print(f"{label:<40}{median:>13.0f}{median / hello:>9.3f}  {bursts}")
    trees = [name for name in rates if name != "hello world"]
    if len(trees) == 2:
        paired = [b / a for a, b in zip(rates[trees[0]], rates[trees[1]], strict=True)]
        median, low, high = statistics.median(paired), min(paired), max(paired)
        print(f"\npaired ratio second / first: median {median:.3f} (min {low:.3f}, max {high:.3f})"
              f" over {len(paired)} bursts")  # fmt: skip


if __name__ == "__main__":
    main()
