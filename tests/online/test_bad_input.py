"""Every bad input gets a 4xx with a message, and Redis is left exactly as it was."""

from __future__ import annotations

import httpx
import pytest

from tests.online.redis_view import redis_contents
from tests.support.redis_server import RedisServer

BAD_OBSERVES: list[tuple[str, bytes, int]] = [
    ("unknown item", b'{"user": "u", "item": "nope", "reward": 1}', 404),
    ("NaN reward", b'{"user": "u", "item": "i1", "reward": NaN}', 422),
    ("infinite reward", b'{"user": "u", "item": "i1", "reward": 1e999}', 422),
    ("string reward", b'{"user": "u", "item": "i1", "reward": "high"}', 422),
    ("missing reward", b'{"user": "u", "item": "i1"}', 422),
    ("unknown field", b'{"user": "u", "item": "i1", "reward": 1, "rating": 2}', 422),
    ("empty user", b'{"user": "", "item": "i1", "reward": 1}', 422),
    ("not JSON", b'{"user": "u", "item": "i1", "reward": 1', 400),
    ("unknown model", b'{"user": "u", "item": "i1", "reward": 1, "model": "other"}', 404),
    ("oversized body", b'{"user": "' + b"u" * 70_000 + b'", "item": "i1", "reward": 1}', 413),
]

BAD_PREDICTS: list[tuple[str, dict[str, str], int]] = [
    ("k zero", {"user": "u", "k": "0"}, 422),
    ("k too large", {"user": "u", "k": "1001"}, 422),
    ("k not a number", {"user": "u", "k": "ten"}, 422),
    ("no user", {"k": "3"}, 422),
    ("malformed where", {"user": "u", "where": "genre === 'x'"}, 400),
    ("unknown column", {"user": "u", "where": "colour == 'red'"}, 400),
    ("code in where", {"user": "u", "where": "__import__('os')"}, 400),
    ("unknown policy", {"user": "u", "policy": "random"}, 400),
    ("unknown item", {"user": "u", "item": "nope"}, 404),
    ("unknown model", {"user": "u", "model": "other"}, 404),
    ("unknown parameter", {"user": "u", "kk": "3"}, 422),
]


@pytest.mark.parametrize(("case", "body", "status"), BAD_OBSERVES, ids=[c[0] for c in BAD_OBSERVES])
def test_bad_observe_is_refused_and_changes_nothing(
    client: httpx.Client, redis_server: RedisServer, case: str, body: bytes, status: int
) -> None:
    client.post("/observe", json={"user": "u", "item": "i2", "reward": 1.0})
    before = redis_contents(redis_server.url)
    response = client.post("/observe", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, (case, response.text)
    assert response.json()["error"]
    assert redis_contents(redis_server.url) == before


@pytest.mark.parametrize(
    ("case", "params", "status"), BAD_PREDICTS, ids=[c[0] for c in BAD_PREDICTS]
)
def test_bad_predict_is_refused_and_changes_nothing(
    client: httpx.Client, redis_server: RedisServer, case: str, params: dict[str, str], status: int
) -> None:
    before = redis_contents(redis_server.url)
    response = client.get("/predict", params=params)
    assert response.status_code == status, (case, response.text)
    assert response.json()["error"]
    assert redis_contents(redis_server.url) == before


def test_chunked_oversized_body_is_refused(client: httpx.Client) -> None:
    def chunks() -> object:
        yield b'{"user": "u", "item": "i1", "reward": 1, "event_id": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = client.post("/observe", content=chunks())  # type: ignore[arg-type]
    assert response.status_code == 413
