"""Helpers of the rebase tests: log events over HTTP, expected closed-form scores, cutoffs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import numpy as np

from feature_store.log_cutoff import LogCutoff, LogId
from feature_store.snapshot import Snapshot
from online.redis_keys import LOG_PARTITIONS, partition_of
from velox.posterior import closed_form_mean


@dataclass(frozen=True)
class Logged:
    """An event the service acknowledged, with its log id."""

    user: str
    item: str
    reward: float
    log_id: LogId
    event_id: str


def observe(client: httpx.Client, user: str, item: str, reward: float) -> Logged:
    """POST /observe and return the logged event."""
    response = client.post("/observe", json={"user": user, "item": item, "reward": reward})
    assert response.status_code == 200, response.text
    body = response.json()
    return Logged(user, item, reward, LogId.parse(body["log_id"]), body["event_id"])


def observe_many(
    client: httpx.Client, users: Sequence[str], per_user: int, seed: int, items: int = 40
) -> list[Logged]:
    """`per_user` random events for each user, interleaved across users."""
    rng = np.random.default_rng(seed)
    return [
        observe(client, user, f"i{rng.integers(items)}", float(rng.normal()))
        for _ in range(per_user)
        for user in users
    ]


def scores(client: httpx.Client, user: str, items: int = 40) -> dict[str, float]:
    """Every item's score for `user`, from a greedy /predict over the whole catalog."""
    response = client.get("/predict", params={"user": user, "k": items, "explore": "false"})
    assert response.status_code == 200, response.text
    return {row["item"]: row["score"] for row in response.json()["items"]}


def expected_scores(snapshot: Snapshot, user: str, events: Sequence[Logged]) -> dict[str, float]:
    """Scores under the closed form: the prior of `user` in `snapshot` (mean w0, precision
    λI + the user's Gram matrix if the snapshot has one) plus `user`'s `events`."""
    mine = [event for event in events if event.user == user]
    features = snapshot.items.features.astype(np.float64)
    rows = [snapshot.item_index[event.item] for event in mine]
    rewards = np.array([event.reward for event in mine])
    precision = snapshot.precision_for(user)
    if precision is None:
        mean = closed_form_mean(snapshot.w0_for(user), snapshot.lam, features[rows], rewards)
    else:
        x = features[rows].reshape(-1, snapshot.dim)
        rhs = precision @ snapshot.w0_for(user) + x.T @ rewards.reshape(-1)
        mean = np.linalg.solve(precision + x.T @ x, rhs)
    return dict(zip(snapshot.item_ids.tolist(), (features @ mean).tolist(), strict=True))


def after_cutoff(cutoff: LogCutoff, events: Sequence[Logged]) -> list[Logged]:
    """The events a snapshot with `cutoff` did not train on."""
    return [e for e in events if not cutoff.includes(partition_of(e.user), e.log_id)]


def cutoff_after(events: Sequence[Logged]) -> LogCutoff:
    """The cutoff of a training that saw exactly `events` (and what came before them)."""
    positions = list(LogCutoff.start(LOG_PARTITIONS).positions)
    for event in events:
        partition = partition_of(event.user)
        positions[partition] = max(positions[partition], event.log_id)
    return LogCutoff.of(positions)


def wait_for_version(client: httpx.Client, version: int, timeout_s: float = 30.0) -> None:
    """Wait until the service serves `version` of its model."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        models = client.get("/models").json()
        if any(model["version"] == version for model in models["models"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"the service never served version {version}")
