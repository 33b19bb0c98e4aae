"""`velox serve`: find or start Redis, then run uvicorn (uvloop, httptools) over `create_app`."""

from __future__ import annotations

import copy
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from online.access import check_bind, load_keys
from online.embedded_redis import EmbeddedRedis
from online.metrics import MULTIPROCESS_ENV
from online.settings import ServiceSettings
from online.store.connect import check_cluster
from velox.settings import VeloxSettings


@contextmanager
def redis_url_for(settings: ServiceSettings) -> Iterator[str]:
    """`VELOX_REDIS_URL` if set; else an embedded Redis started now and stopped on exit."""
    if settings.redis_url is not None:
        yield settings.redis_url
        return
    embedded = EmbeddedRedis(settings.embedded_redis_dir(), appendfsync=settings.redis_appendfsync)
    with embedded:
        yield embedded.url


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration plus the `velox` loggers (snapshot swaps, errors)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["velox"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _exit_on_sigterm(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """With several workers, a fresh PROMETHEUS_MULTIPROC_DIR (online/metrics.py) while serving."""
    if workers <= 1 or MULTIPROCESS_ENV in os.environ:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="velox-metrics-") as directory:
        os.environ[MULTIPROCESS_ENV] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_ENV]


def run_server(
    settings: VeloxSettings, *, host: str, port: int, workers: int = 1, insecure: bool = False
) -> None:
    """Serve until interrupted; with several workers only this process owns the embedded Redis.

    Refuses (`AccessConfigError`) keys it cannot read, and a non-loopback `host` with no key
    configured unless `insecure`.
    """
    import uvicorn

    service_settings = ServiceSettings(**settings.model_dump(exclude_unset=False))
    keys = load_keys(service_settings.api_keys, service_settings.api_keys_file)
    check_bind(host, keys, insecure)
    check_cluster(service_settings.redis_url, timeout_s=service_settings.redis_timeout_s)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the handler
    # it found: the default one would kill this process before the embedded Redis is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with redis_url_for(service_settings) as url, _metrics_dir(workers):
        # Workers are fresh processes that build their settings from the environment.
        os.environ.update(
            VELOX_HOME=str(service_settings.home),
            VELOX_MODEL=service_settings.model,
            VELOX_REDIS_URL=url,
            VELOX_SNAPSHOT_ROOT=service_settings.resolved_snapshot_root(),
        )
        uvicorn.run(
            "online.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            # Nothing here reads the client's address, so uvicorn's per-request wrapper that
            # rewrites it from X-Forwarded-For is not needed.
            proxy_headers=False,
            log_config=log_config(),
        )
