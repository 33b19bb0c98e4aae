"""Rewards joining /predict answers over HTTP against a real Redis: in the window, late, out
of order, twice, after the window closed, and the default reward when no reward came."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.online.closed_form import expected_score, load
from tests.online.live_server import LiveServer
from tests.online.redis_view import user_events
from tests.online.test_predict_observe import fresh_user, observe, score, top_k
from tests.support.redis_server import RedisServer

WINDOW_S = 1


@pytest.fixture(scope="module")
def windowed(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, snapshot_root: str
) -> Iterator[httpx.Client]:
    """`velox serve` whose model has a 1 s reward window and a default reward of -0.5."""
    env = {
        "VELOX_REDIS_URL": redis_server.url,
        "VELOX_SNAPSHOT_ROOT": snapshot_root,
        "VELOX_MODEL": "movies",
        "VELOX_SEED": "11",
        "VELOX_MODEL_REWARDS": f'{{"movies": {{"window_s": {WINDOW_S}, "default_reward": -0.5}}}}',
        "VELOX_REWARD_SWEEP_INTERVAL_S": "0.1",
    }
    server = LiveServer(tmp_path_factory.mktemp("windowed"), env)
    server.start()
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        yield http
    server.stop()


def events_of(redis_server: RedisServer, user: str) -> list[dict[str, str]]:
    """The user's feedback-log entries."""
    return user_events(redis_server.url, "movies", user)


def wait_for_events(redis_server: RedisServer, user: str, count: int) -> list[dict[str, str]]:
    """The user's log once it holds `count` entries (the sweeper runs every 0.1 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = events_of(redis_server, user)
        if len(events) >= count:
            return events
        time.sleep(0.05)
    raise AssertionError(f"{user} has {len(events_of(redis_server, user))} events, not {count}")


def test_late_out_of_order_and_repeated_rewards_join_their_answers(
    client: httpx.Client, redis_server: RedisServer, snapshot_root: str
) -> None:
    snapshot = load(snapshot_root)
    user = fresh_user()
    first = top_k(client, user=user, k=3)
    second = top_k(client, user=user, k=3)
    # The second answer's rewards come first, the first's last slot before its first slot,
    # and one reward arrives twice.
    order = [(second, 2, 1.0), (first, 2, 0.0), (second, 0, 3.0), (first, 0, 2.0)]
    observed = []
    for answer, slot, reward in order:
        shown = answer["items"][slot]
        event_id = f"{answer['prediction_id']}-{slot}"
        body = {"user": user, "item": shown["item"], "reward": reward, "event_id": event_id}
        result = observe(client, **body, prediction_id=answer["prediction_id"])
        assert result["joined"] is True and result["note"] is None
        assert result["propensity"] == shown["propensity"]
        observed.append((shown["item"], reward))
        again = observe(client, **body, prediction_id=answer["prediction_id"])
        assert again["duplicate"] is True and again["joined"] is None
    logged = events_of(redis_server, user)
    assert len(logged) == len(order)
    for fields, (answer, slot, _) in zip(logged, order, strict=True):
        assert fields["prediction_id"] == answer["prediction_id"]
        assert float(fields["propensity"]) == answer["items"][slot]["propensity"]
    # The posterior does not depend on the order the rewards came in.
    item = first["items"][1]["item"]
    assert score(client, user, item)["score"] == pytest.approx(
        expected_score(snapshot, user, item, observed), rel=1e-5
    )


def test_expired_or_unknown_prediction_ids_are_learned_from_and_say_so(
    windowed: httpx.Client, redis_server: RedisServer, snapshot_root: str
) -> None:
    snapshot = load(snapshot_root)
    user = fresh_user()
    answer = top_k(windowed, user=user, k=2, explore="false")
    time.sleep(WINDOW_S + 0.5)
    item = answer["items"][0]["item"]
    late = observe(
        windowed, user=user, item=item, reward=4.0, prediction_id=answer["prediction_id"]
    )
    unknown = observe(windowed, user=user, item="i3", reward=1.0, prediction_id="no-such-answer")
    for result in (late, unknown):
        assert result["joined"] is False and result["propensity"] is None
        assert "learned from without a propensity" in (result["note"] or "")
    not_shown = top_k(windowed, user=user, k=1, explore="false")
    other = next(f"i{i}" for i in range(40) if f"i{i}" != not_shown["items"][0]["item"])
    result = observe(
        windowed, user=user, item=other, reward=2.0, prediction_id=not_shown["prediction_id"]
    )
    assert result["joined"] is False
    # Each was learned from. Every slot of both answers got no reward in its window, so each
    # also got the default reward when its window closed (the late reward does not count).
    defaults = [(entry["item"], -0.5) for entry in answer["items"] + not_shown["items"]]
    expected = sorted([(item, 4.0), ("i3", 1.0), (other, 2.0), *defaults])
    events = wait_for_events(redis_server, user, len(expected))
    assert sorted((e["item_id"], float(e["reward"])) for e in events) == expected
    assert score(windowed, user, "i0")["score"] == pytest.approx(
        expected_score(snapshot, user, "i0", expected), rel=1e-5
    )


def test_default_reward_goes_to_the_unrewarded_slots_once(
    windowed: httpx.Client, redis_server: RedisServer, snapshot_root: str
) -> None:
    snapshot = load(snapshot_root)
    user = fresh_user()
    answer = top_k(windowed, user=user, k=3)
    pid, shown = answer["prediction_id"], answer["items"]
    rewarded = observe(windowed, user=user, item=shown[1]["item"], reward=2.0, prediction_id=pid)
    assert rewarded["joined"] is True
    events = wait_for_events(redis_server, user, 3)
    time.sleep(0.5)  # several more sweeps: nothing more may be applied
    events = events_of(redis_server, user)
    defaults = [e for e in events if e["event_id"].startswith("default:")]
    assert sorted(e["event_id"] for e in defaults) == [f"default:{pid}:0", f"default:{pid}:2"]
    for event in defaults:
        slot = int(event["event_id"].rsplit(":", 1)[1])
        assert event["item_id"] == shown[slot]["item"]
        assert float(event["reward"]) == -0.5
        assert float(event["propensity"]) == shown[slot]["propensity"]
        assert event["prediction_id"] == pid
    assert len(events) == 3
    observations = [(shown[1]["item"], 2.0), (shown[0]["item"], -0.5), (shown[2]["item"], -0.5)]
    assert score(windowed, user, "i7")["score"] == pytest.approx(
        expected_score(snapshot, user, "i7", observations), rel=1e-5
    )
