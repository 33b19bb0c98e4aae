"""`velox serve` in a subprocess on a free port, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.redis_server import free_port


class LiveServer:
    """Start `velox serve` with `env` added to the environment; stop it on `stop()`."""

    def __init__(self, home: Path, env: dict[str, str], workers: int = 1) -> None:
        self.port = free_port()
        self.home = home
        # Only the VELOX_* variables the test gives reach the server, none of the caller's.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
        self.env = {**inherited, "VELOX_HOME": str(home), "VELOX_POLL_INTERVAL_S": "0.1", **env}
        self.workers = workers
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0, ready: bool = True) -> None:
        """Start the server; wait for /readyz (or /healthz when `ready` is False) to answer 200."""
        command = [sys.executable, "-c", "from velox.cli import main; main()", "serve"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        log = (self.home / f"server-{self.port}.log").open("wb")
        self._process = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
        probe = "/readyz" if ready else "/healthz"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"velox serve exited:\n{self.log()}")
            try:
                if httpx.get(self.url + probe, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"velox serve did not become ready:\n{self.log()}")

    def log(self) -> str:
        """What the server printed so far."""
        return (self.home / f"server-{self.port}.log").read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        """SIGTERM the server (uvicorn shuts down gracefully) and wait for it."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None
