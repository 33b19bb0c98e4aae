"""The Lua scripts of the Redis weight store, and the parsing of what they return.

`observe.lua` (one /observe), `catch_up.lua` (the read of a rebase) and `rebase.lua` (storing a
rebased state); each is sent by EVALSHA, and by EVAL once after a Redis restart or SCRIPT
FLUSH. Spec: docs/redis_layout.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import hiredis

from online.errors import ServiceError
from online.weight_store import FeedbackEvent, LoggedEvent

Send = Callable[[Sequence[Sequence[str | bytes | int]]], Awaitable[list[Any]]]
"""Sends a pipeline and returns its replies (the RESP client's, or one with retries)."""


def text(value: Any) -> str:
    """A reply as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def optional_text(value: Any) -> str | None:
    """A reply as text, None for a nil reply."""
    return None if value is None else text(value)


def check(reply: Any) -> Any:
    """The reply, or ServiceError if Redis answered with an error."""
    if isinstance(reply, hiredis.ReplyError):
        raise ServiceError(f"Redis refused a command: {reply}")
    return reply


@dataclass(frozen=True)
class LuaScript:
    """A script of the `online` package and its SHA1."""

    source: bytes
    sha: str

    @classmethod
    def load(cls, name: str) -> LuaScript:
        """Read `online/<name>`."""
        source = files("online").joinpath(name).read_bytes()
        return cls(source, hashlib.sha1(source, usedforsecurity=False).hexdigest())

    async def run(
        self, send: Send, keys: Sequence[str], args: Sequence[str | bytes | int]
    ) -> list[Any]:
        """EVALSHA, falling back to EVAL if Redis does not know the script."""
        (reply,) = await send([("EVALSHA", self.sha, len(keys), *keys, *args)])
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            (reply,) = await send([("EVAL", self.source, len(keys), *keys, *args)])
        result: list[Any] = check(reply)
        # Redis ends an array reply at its first nil; pad so that positions stay meaningful.
        return result + [None] * (4 - len(result))


OBSERVE = LuaScript.load("observe.lua")
CATCH_UP = LuaScript.load("catch_up.lua")
REBASE = LuaScript.load("rebase.lua")


@dataclass(frozen=True)
class CaughtUp:
    """catch_up.lua's answer: the raw state value, its applied id, the user's last log id, the
    logged events after `applied` (or the cutoff), and how many listed ones were trimmed."""

    value: bytes | None
    applied: str | None
    last: str | None
    events: list[LoggedEvent]
    missing: int

    @classmethod
    def parse(cls, reply: list[Any]) -> CaughtUp:
        """Parse the script's reply."""
        value, applied, last, missing = reply[:4]
        events = [logged_event(text(log_id), flat) for log_id, flat in reply[4:]]
        return cls(value, optional_text(applied), optional_text(last), events, int(missing or 0))


def logged_event(log_id: str, flat: Sequence[Any]) -> LoggedEvent:
    """A feedback-log entry (flat field/value list) as a `LoggedEvent`."""
    fields = {text(k): text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
    event = FeedbackEvent(
        event_id=fields["event_id"],
        user=fields["user_id"],
        item=fields["item_id"],
        reward=float(fields["reward"]),
        timestamp_us=int(fields["timestamp"]),
        prediction_id=fields["prediction_id"] or None,
    )
    propensity = float(fields["propensity"]) if fields["propensity"] else None
    return LoggedEvent(log_id=log_id, event=event, propensity=propensity)
