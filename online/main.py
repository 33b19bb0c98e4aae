"""The FastAPI app: wiring only (settings, store, service, routers, error handler)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager, closing
from functools import partial

from fastapi import FastAPI

from feature_store.added_items import SyncRedis
from feature_store.registry import Registry
from feature_store.score_tables.engines import open_score_engine
from online.access import AccessGate, load_keys
from online.collector import quiet_collector
from online.dashboard.state import DashboardState
from online.direct_routes import DirectRoutesApp
from online.docs import install_docs
from online.errors import install_error_handlers
from online.featurize.added_items import AddedItems
from online.reward_sweeper import RewardSweeper
from online.routes import dashboard, health, metrics, models, observe, predict, recommendations
from online.routes import items as items_routes
from online.server import redis_url_for
from online.service import Service
from online.settings import ServiceSettings
from online.weight_store import RedisStoreConfig, open_store
from velox.redis_url import sync_client


def store_config(settings: ServiceSettings, url: str) -> RedisStoreConfig:
    """The weight store configuration the settings describe."""
    return RedisStoreConfig(
        url=url,
        timeout_s=settings.redis_timeout_s,
        dedupe_window=settings.dedupe_window,
        recent_events=settings.recent_events,
        decision_log_maxlen=settings.decision_log_maxlen,
        wait_replicas=settings.redis_wait_replicas,
        wait_timeout_ms=settings.redis_wait_timeout_ms,
    )


def added_items_for(
    settings: ServiceSettings, client: SyncRedis, lock: threading.RLock
) -> AddedItems:
    """The service's added items, featurized with the settings' batching and torch threads."""
    return AddedItems(
        client,
        lock,
        slo_s=settings.featurize_batch_slo_ms / 1000,
        max_wait_s=settings.featurize_max_wait_ms / 1000,
        torch_threads=settings.featurize_threads,
    )


def create_app(settings: ServiceSettings | None = None) -> DirectRoutesApp:
    """Build the app; uvicorn calls it with no argument in every worker (`--factory`)."""
    settings = settings or ServiceSettings()
    dashboard_state = DashboardState()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            url = stack.enter_context(redis_url_for(settings))
            store = open_store(store_config(settings, url))
            service = Service(settings, store, Registry(settings.resolved_snapshot_root()))
            items = added_items_for(settings, sync_client(url), service.install_lock)
            service.items = items
            service.watcher.after_poll = partial(items.poll, service.install)
            await asyncio.to_thread(service.watcher.poll_once)
            service.watcher.start()
            sweeper = RewardSweeper(service, settings.reward_sweep_interval_s)
            sweeper.start()
            app.state.service = service
            app.state.scores = stack.enter_context(closing(open_score_engine(settings)))
            assert isinstance(app, DirectRoutesApp)
            untimed = app.direct_endpoints
            app.direct_endpoints = service.metrics.timed(untimed)  # for /metrics' histogram
            dashboard_state.start(service, url, app.state.scores)
            quiet_collector()  # long-lived startup objects need no more collection passes
            try:
                yield
            finally:
                app.direct_endpoints = untimed
                await dashboard_state.stop()
                await sweeper.stop()
                service.watcher.stop()
                await items.close()
                await store.close()

    app = DirectRoutesApp(
        title="Velox",
        summary="Online personalization: score(u, x) = f(x; theta)^T w_u",
        lifespan=lifespan,
        docs_url=None,  # served from local files by install_docs
        redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app)
    keys = load_keys(settings.api_keys, settings.api_keys_file)
    app.access = AccessGate(keys) if keys is not None else None
    routers = (predict.router, observe.router, models.router, health.router, metrics.router,
               dashboard.router, items_routes.router)  # fmt: skip
    for router in routers:
        app.include_router(router)
    app.include_router(recommendations.router)  # not a hot route: FastAPI serves it
    app.serve_directly(routers)
    # The dashboard's traffic panel times the hot routes (two clock reads per request).
    app.direct_endpoints = dashboard_state.traffic.timed(app.direct_endpoints)
    app.state.dashboard = dashboard_state
    return app
