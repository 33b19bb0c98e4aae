"""Service throughput and latency, loopback, in one run: hello-world FastAPI vs /predict, /observe.

    python -m bench.bench_service [--seconds 10] [--connections 16] [--rounds 3]

Builds a movielens-100k-shaped synthetic snapshot (1682 items, 943 users, d = 18), starts the
embedded Redis (unix socket, AOF everysec: the default setup), then measures with `wrk`
(`apt-get install wrk`; one thread, loopback only, bounded in time), each server one uvicorn
worker (uvloop, httptools):

* a hello-world FastAPI endpoint (the baseline, same uvicorn options),
* `POST /observe` at concurrency 1 (latency) and at `--connections` (throughput),
* `GET /predict?user=U&k=10` (Thompson sampling on, users with stored state) at `--connections`,
  and the same with `explore=false` (greedy) to separate the exploration's cost.

Prints one table. The /observe runs come first; then `--rounds` rounds each run hello world,
/predict and /predict greedy back to back, and each /predict figure is compared with the
hello-world run of its own round (on a shared machine the load drifts between rounds, not
within a few seconds). The table gives every round and the median over rounds. "cpu us/req" is
the server process's CPU time per request (utime + stime from /proc), which a busy shared
machine disturbs less than the request rate; "redis us/req" is the embedded Redis's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from fastapi import FastAPI

from bench.service_fixture import publish_bench_snapshot
from tests.support.redis_server import free_port

hello_app = FastAPI()


@hello_app.get("/hello")
async def hello() -> dict[str, str]:
    """The baseline: the smallest useful FastAPI endpoint."""
    return {"hello": "world"}


OBSERVE_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"user":"u%d","item":"i%d","reward":%d}',
    math.random(0, 942), math.random(0, 1681), math.random(1, 5))
  return wrk.format(nil, nil, nil, body)
end
"""

PREDICT_LUA = """
request = function()
  return wrk.format("GET", string.format("/predict?user=u%d&k=10", math.random(0, 942)))
end
"""


@dataclass(frozen=True)
class Result:
    """One wrk run, with the CPU the server (and its Redis) spent per request."""

    name: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us: float = 0.0
    redis_cpu_us: float = 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct child processes of `pid`."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def measured(
    name: str, url: str, seconds: int, connections: int, script: str | None, *, server: int
) -> Result:
    """`run_wrk` plus the CPU per request of `server` and of its child processes (Redis)."""
    helpers = children(server)
    before = cpu_seconds(server), sum(cpu_seconds(pid) for pid in helpers)
    result = run_wrk(name, url, seconds, connections, script)
    after = cpu_seconds(server), sum(cpu_seconds(pid) for pid in helpers)
    requests = result.requests_per_s * seconds
    return replace(
        result,
        server_cpu_us=(after[0] - before[0]) / requests * 1e6,
        redis_cpu_us=(after[1] - before[1]) / requests * 1e6,
    )


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(name: str, url: str, seconds: int, connections: int, script: str | None) -> Result:
    """Run wrk against `url` and parse its summary."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    if script:
        command += ["-s", lua.name]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)
    percentile = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.M))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if socket_errors:
        print(f"{name}: socket errors {socket_errors.group(1)}", file=sys.stderr)
    return Result(
        name,
        connections,
        rate,
        _ms(percentile["50"]),
        _ms(percentile["99"]),
        int(errors.group(1)) if errors else 0,
    )


def start_server(command: list[str], env: dict[str, str], probe: str) -> subprocess.Popen[bytes]:
    """Start a server process (output to `$VELOX_HOME/server.log`), wait for `probe` = 200."""
    log = Path(env["VELOX_HOME"]) / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(probe, timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server and wait for it."""
    process.terminate()
    process.wait(timeout=30)


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_service needs wrk on the PATH (apt-get install wrk)")
    home = Path(tempfile.mkdtemp(prefix="velox-bench-"))
    publish_bench_snapshot(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    env.update(VELOX_HOME=str(home), VELOX_MODEL="movies")
    uvicorn_options = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    port = free_port()
    hello = start_server(
        [sys.executable, "-m", "uvicorn", "bench.bench_service:hello_app", "--port", str(port),
         "--log-level", "warning", *uvicorn_options],
        env, f"http://127.0.0.1:{port}/hello",
    )  # fmt: skip
    velox_port = free_port()
    velox = start_server(
        [sys.executable, "-c", "from velox.cli import main; main()", "serve",
         "--port", str(velox_port)],
        env, f"http://127.0.0.1:{velox_port}/readyz",
    )  # fmt: skip
    try:
        hello_url = f"http://127.0.0.1:{port}/hello"
        base = f"http://127.0.0.1:{velox_port}"
        seconds, connections, pid = args.seconds, args.connections, velox.pid
        observe_url, predict_url = base + "/observe", base + "/predict"
        greedy = PREDICT_LUA.replace("k=10", "k=10&explore=false")
        results = [
            measured("/observe", observe_url, max(3, seconds // 2), 1, OBSERVE_LUA, server=pid),
            measured("/observe", observe_url, seconds, connections, OBSERVE_LUA, server=pid),
        ]
        rounds = []
        for _ in range(args.rounds):
            runs = (
                ("hello world", hello_url, None, hello.pid),
                ("/predict k=10", predict_url, PREDICT_LUA, pid),
                ("/predict greedy", predict_url, greedy, pid),
            )
            rounds.append([
                measured(name, url, seconds, connections, script, server=server)
                for name, url, script, server in runs
            ])  # fmt: skip
    finally:
        stop(velox)
        stop(hello)
    print_table(results, rounds)


def print_table(observes: list[Result], rounds: list[list[Result]]) -> None:
    """Print every run; /predict rows relative to their round's hello world, then medians."""
    print(f"{'round':<6}{'endpoint':<16}{'conns':>6}{'req/s':>8}{'vs hello':>9}{'p50 ms':>8}"
          f"{'p99 ms':>8}{'non-2xx':>8}{'cpu us/req':>11}{'cpu vs hello':>13}"
          f"{'redis us/req':>13}")  # fmt: skip
    for r in observes:
        print(f"{'-':<6}{r.name:<16}{r.connections:>6}{r.requests_per_s:>8.0f}{'':>9}"
              f"{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}{r.errors:>8}{r.server_cpu_us:>11.0f}{'':>13}"
              f"{r.redis_cpu_us:>13.0f}")  # fmt: skip
    ratios: dict[str, list[tuple[float, float, float]]] = {}
    for number, runs in enumerate(rounds, start=1):
        hello = runs[0]
        for r in runs:
            rate, cpu = (
                r.requests_per_s / hello.requests_per_s,
                hello.server_cpu_us / r.server_cpu_us,
            )
            ratios.setdefault(r.name, []).append((rate, cpu, r.p99_ms))
            print(f"{number:<6}{r.name:<16}{r.connections:>6}{r.requests_per_s:>8.0f}"
                  f"{rate:>8.2f}x{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}{r.errors:>8}"
                  f"{r.server_cpu_us:>11.0f}{cpu:>12.2f}x{r.redis_cpu_us:>13.0f}")  # fmt: skip
    print("\nmedian over rounds (each vs its own round's hello world):")
    for name, values in ratios.items():
        rate, cpu, p99 = (statistics.median(v[i] for v in values) for i in range(3))
        print(f"  {name:<16} throughput {rate:.2f}x  cpu/req {cpu:.2f}x  p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
