"""What the service benchmarks share: the movielens-100k-shaped snapshot and a Redis for it."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from online.settings import ServiceSettings
from tests.online.synthetic import publish, synthetic_snapshot
from tests.support.redis_server import redis_binary

N_ITEMS, N_USERS, DIM = 1682, 943, 18
MODEL = "movies"


def publish_bench_snapshot(home: Path) -> None:
    """Publish model `movies` v1 (synthetic, users u0..u942) under `home/snapshots`."""
    snapshot = synthetic_snapshot(n_items=N_ITEMS, dim=DIM, n_users=N_USERS, seed=1)
    snapshot.user_ids = [f"u{u}" for u in range(N_USERS)]
    publish(str(home / "snapshots"), MODEL, snapshot)


@contextmanager
def bench_service_settings(prefix: str) -> Iterator[tuple[ServiceSettings, Path]]:
    """Settings of a service over the bench snapshot and a redis-server on a unix socket (AOF
    everysec, as the embedded default), and its home; the server stops on exit."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    socket = home / "redis.sock"
    redis = subprocess.Popen(
        [redis_binary(), "--port", "0", "--unixsocket", str(socket), "--save", "",
         "--appendonly", "yes", "--dir", str(home)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while not socket.exists():
            time.sleep(0.05)
        publish_bench_snapshot(home)
        yield ServiceSettings(
            home=home, redis_url=f"unix://{socket}", model=MODEL,
            snapshot_root=str(home / "snapshots"),
        ), home  # fmt: skip
    finally:
        redis.terminate()
        redis.wait(timeout=30)
