"""The decision side of the Redis weight store: what /predict showed, and what it is owed.

Per answer (layout: docs/redis_layout.md): the decision-log entry (XADD), the shown items'
propensities for joining rewards (`shown:<id>`, SET with the reward window as TTL), and, when
the model gives a default reward, an entry in the partition's `pending` sorted set scored by
the window's close. `due_rewards` reads the closed entries of every partition in one round
trip; the service applies their default rewards through the ordinary /observe update (each
with the event id `default:<prediction id>:<slot>`, so a retry or a second worker changes
nothing) and then `settle_reward` removes the entry.
"""

from __future__ import annotations

from typing import Any

import orjson

from online.redis_keys import LOG_PARTITIONS, UserKeys, pending_key
from online.redis_scripts import Send, check
from online.resp_client import Command
from online.weight_store import Decision, DueReward

REWARDED_GRACE_S = 86_400
"""How long the rewarded items of an answer outlive its window (for a late sweep)."""


def decision_commands(model: str, decision: Decision, log_maxlen: int) -> list[Command]:
    """The commands that record one /predict answer (sent without waiting)."""
    keys = UserKeys.of(model, decision.user)
    pid = decision.prediction_id
    shown = orjson.dumps(dict(zip(decision.items, decision.propensities, strict=True)))
    commands: list[Command] = [("SET", keys.prediction(pid), shown, "EX", decision.window_s)]
    if decision.default_reward is not None:
        close_ms = decision.timestamp_us // 1000 + decision.window_s * 1000
        owed = {
            "p": pid,
            "u": decision.user,
            "i": list(decision.items),
            "q": list(decision.propensities),
            "r": decision.default_reward,
        }
        commands.append(("ZADD", keys.pending, close_ms, orjson.dumps(owed)))
    if log_maxlen:
        entry = (
            "prediction_id", pid,
            "user_id", decision.user,
            "version", decision.version,
            "policy", decision.policy,
            "candidates", decision.candidates,
            "source", decision.source,
            "timestamp", decision.timestamp_us,
            "items", orjson.dumps(list(decision.items)),
            "propensities", orjson.dumps(list(decision.propensities)),
        )  # fmt: skip
        commands.append(("XADD", keys.decisions, "MAXLEN", "~", log_maxlen, "*", *entry))
    return commands


async def due_rewards(send: Send, model: str, now_ms: int, limit: int) -> list[DueReward]:
    """Up to `limit` closed answers per partition, read in one round trip."""
    replies = await send(
        [
            ("ZRANGEBYSCORE", pending_key(model, partition), "-inf", now_ms, "LIMIT", 0, limit)
            for partition in range(LOG_PARTITIONS)
        ]
    )
    return [_due(token) for reply in replies for token in check(reply)]


def _due(token: bytes) -> DueReward:
    owed: dict[str, Any] = orjson.loads(token)
    return DueReward(
        token=token,
        prediction_id=owed["p"],
        user=owed["u"],
        items=owed["i"],
        propensities=owed["q"],
        default_reward=float(owed["r"]),
    )


async def settle_reward(send: Send, model: str, due: DueReward) -> None:
    """ZREM the entry (a no-op if another worker already did)."""
    (reply,) = await send([("ZREM", UserKeys.of(model, due.user).pending, due.token)])
    check(reply)
