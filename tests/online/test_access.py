"""Access control through HTTP against real `velox serve` processes: every role on every route.

Two servers share the session's Redis and snapshot: one with a key of each role (reads need a
key), one with write and admin keys only, from a JSON keys file (reads are open).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.online.live_server import LiveServer
from tests.support.redis_server import RedisServer, free_port

READ_KEY = "read-key-3f9c2a71d0b84e65"
WRITE_KEY = "write-key-8b1e47c2a9d35f06"
ADMIN_KEY = "admin-key-c07d5e9a2b46f183"
BAD_KEY = "wrong-key-5a2f8c1e7d904b36"
ALL_KEYS = (READ_KEY, WRITE_KEY, ADMIN_KEY, BAD_KEY)
KEY_OF = {"read": READ_KEY, "write": WRITE_KEY, "admin": ADMIN_KEY, "bad": BAD_KEY, "none": None}
LEVEL = {"read": 1, "write": 2, "admin": 3}
OBSERVE = {"user": "known1", "item": "i3", "reward": 1.0}
# (method, path, body, least role); a route not served yet (PUT /items, a promote) still
# answers 401/403 before it could answer 404 or 405.
ROUTES = [
    ("GET", "/predict?user=known1&k=3", None, "read"),
    ("GET", "/predict?user=known1&item=i2", None, "read"),
    ("GET", "/models", None, "read"),
    ("GET", "/metrics", None, "read"),
    ("GET", "/dashboard", None, "read"),
    ("GET", "/recommendations?user=known1", None, "read"),
    ("POST", "/observe", OBSERVE, "write"),
    ("PUT", "/items/i99", {"genre": "drama"}, "write"),
    ("POST", "/models/movies/promote", {"version": 1}, "admin"),
    ("DELETE", "/models/movies", None, "admin"),
]


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, snapshot_root: str
) -> Iterator[dict[str, LiveServer]]:
    """`keyed`: a key per role; `open_reads`: write and admin keys from a JSON file."""
    base = {"VELOX_REDIS_URL": redis_server.url, "VELOX_SNAPSHOT_ROOT": snapshot_root,
            "VELOX_MODEL": "movies"}  # fmt: skip
    keys = f"read:{READ_KEY}, write:{WRITE_KEY}\nadmin:{ADMIN_KEY}"
    keys_file = tmp_path_factory.mktemp("keys") / "keys.json"
    keys_file.write_text(json.dumps({"write": [WRITE_KEY], "admin": [ADMIN_KEY]}))
    started = {
        "keyed": LiveServer(tmp_path_factory.mktemp("keyed"), {**base, "VELOX_API_KEYS": keys}),
        "open_reads": LiveServer(
            tmp_path_factory.mktemp("open"), {**base, "VELOX_API_KEYS_FILE": str(keys_file)}
        ),
    }
    try:
        for server in started.values():
            server.start()
        yield started
    finally:
        for server in started.values():
            server.stop()


def _call(
    server: LiveServer, method: str, path: str, body: object, key: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=10.0)


def _expected(who: str, least: str, reads_need_a_key: bool) -> int | None:
    """401 or 403, or None when the call passes access control."""
    if least == "read" and not reads_need_a_key:
        return None
    if who in ("none", "bad") or (who == "read" and not reads_need_a_key):
        return 401  # the open_reads server has no read key: one is as unknown as a bad key
    return 403 if LEVEL[who] < LEVEL[least] else None


@pytest.mark.parametrize("who", list(KEY_OF))
@pytest.mark.parametrize("name", ["keyed", "open_reads"])
def test_every_role_on_every_route(servers: dict[str, LiveServer], name: str, who: str) -> None:
    server = servers[name]
    for method, path, body, least in ROUTES:
        response = _call(server, method, path, body, KEY_OF[who])
        expected = _expected(who, least, reads_need_a_key=name == "keyed")
        where = f"{name}: {who} key, {method} {path}"
        if expected is None:
            assert response.status_code not in (401, 403), where
            if path.split("?")[0] in ("/predict", "/observe", "/models", "/metrics"):
                assert response.status_code == 200, where
            continue
        assert response.status_code == expected, where
        assert response.headers["content-type"] == "application/json", where
        message = response.json()["error"]
        assert message and set(response.json()) == {"error"}, where
        if expected == 401:
            assert response.headers["www-authenticate"].startswith("Bearer"), where
            missing = "missing API key: send the header Authorization: Bearer KEY"
            assert message == ("invalid API key" if who != "none" else missing), where
        else:
            assert f"needs a {least} key" in message and f"role is {who}" in message, where


def test_health_and_docs_stay_open(servers: dict[str, LiveServer]) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert httpx.get(servers["keyed"].url + path).status_code == 200, path


def test_only_an_observe_with_a_write_key_is_applied(servers: dict[str, LiveServer]) -> None:
    server = servers["keyed"]

    def std(user: str) -> float:
        path = f"/predict?user={user}&item=i3"
        value: float = _call(server, "GET", path, None, READ_KEY).json()["std"]
        return value

    prior = std("access-never-seen")
    body = {**OBSERVE, "user": "access-user"}
    assert _call(server, "POST", "/observe", body, READ_KEY).status_code == 403
    assert _call(server, "POST", "/observe", body, BAD_KEY).status_code == 401
    assert std("access-user") == prior
    assert _call(server, "POST", "/observe", body, WRITE_KEY).status_code == 200
    assert std("access-user") < prior


def test_a_browser_may_send_the_key_as_basic_credentials(servers: dict[str, LiveServer]) -> None:
    server = servers["keyed"]
    basic = base64.b64encode(f"anyone:{READ_KEY}".encode()).decode()
    ok = httpx.get(server.url + "/models", headers={"Authorization": f"Basic {basic}"})
    assert ok.status_code == 200
    wrong = base64.b64encode(f"anyone:{BAD_KEY}".encode()).decode()
    refused = httpx.get(server.url + "/models", headers={"Authorization": f"Basic {wrong}"})
    assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
    other = httpx.get(server.url + "/models", headers={"Authorization": f"Token {READ_KEY}"})
    assert other.status_code == 401


def test_keys_never_reach_the_log(servers: dict[str, LiveServer]) -> None:
    for server in servers.values():
        for key in ALL_KEYS:
            _call(server, "POST", "/observe", {"user": 1}, key)  # a 422 with every key
            _call(server, "GET", "/predict?user=known1&where=(", None, key)  # a 400
        log = server.log()
        assert "Application startup complete" in log
        assert not [key for key in ALL_KEYS if key in log]


def _serve(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    velox = Path(sys.executable).parent / "velox"
    base = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    return subprocess.run(
        [str(velox), "serve", "--port", str(free_port()), *args],
        env={**base, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_serve_refuses_an_open_non_loopback_address(tmp_path: Path) -> None:
    done = _serve(["--host", "0.0.0.0"], {"VELOX_HOME": str(tmp_path)})  # noqa: S104
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: refusing to serve 0.0.0.0 with no API key configured: set VELOX_API_KEYS or "
        "VELOX_API_KEYS_FILE (README: Access control), or pass --insecure"
    ]
    assert not (tmp_path / "redis").exists()  # refused before anything started


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (f"reader:{READ_KEY}", "VELOX_API_KEYS entry 1: unknown role 'reader'"),
        (f"write:{WRITE_KEY},{ADMIN_KEY}", "VELOX_API_KEYS entry 2: expected ROLE:KEY"),
        ("admin:short-key", "VELOX_API_KEYS entry 1: a key must have at least 16 characters"),
        ('{"admin": "' + ADMIN_KEY + '"}', "role 'admin' needs a list of key strings"),
    ],
)
def test_serve_refuses_bad_keys_in_one_line_without_showing_them(
    tmp_path: Path, keys: str, message: str
) -> None:
    done = _serve([], {"VELOX_HOME": str(tmp_path), "VELOX_API_KEYS": keys})
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not [key for key in (*ALL_KEYS, "short-key") if key in done.stderr + done.stdout]
