"""MovieLens-100k: from the GroupLens archive over HTTP, or offline from the recbole wheel."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from batch.datasets.movielens import (
    MovieLensSources,
    fetch_movielens_100k,
    load_movielens_100k,
    parse_grouplens_zip,
    parse_recbole_wheel,
)
from batch.errors import DatasetUnavailableError
from batch.events_schema import EVENTS_SCHEMA
from tests.batch.movielens_fixtures import grouplens_zip, recbole_wheel
from tests.support.redis_server import free_port

UNREACHABLE = f"http://127.0.0.1:{free_port()}/ml-100k.zip"


@pytest.fixture
def archive_url() -> Iterator[str]:
    """A real HTTP server on loopback that serves the tiny GroupLens zip."""
    body = grouplens_zip()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip"
    server.shutdown()
    server.server_close()


def _offline(wheels: Path) -> MovieLensSources:
    return MovieLensSources(
        url=UNREACHABLE, timeout=2.0, pip_args=("--no-index", "--find-links", str(wheels))
    )


def test_grouplens_archive_parses_into_the_schema() -> None:
    events, items, users = parse_grouplens_zip(grouplens_zip())
    assert events.schema == EVENTS_SCHEMA
    first = events.to_pylist()[0]
    assert (first["event_id"], first["user_id"], first["item_id"], first["reward"]) == (
        "u1-i10", "1", "10", 4.0,
    )  # fmt: skip
    assert first["timestamp"] == datetime.fromtimestamp(881250949, tz=UTC)
    assert items.to_pylist() == [
        {"item_id": "10", "title": "Toy Story", "year": 1995,
         "genres": ["Animation", "Children's", "Comedy"]},
        {"item_id": "20", "title": "Four Rooms", "year": None, "genres": ["Thriller"]},
    ]  # fmt: skip
    assert users.column("occupation").to_pylist() == ["technician", "other"]


def test_both_sources_parse_to_the_same_tables(tmp_path: Path) -> None:
    from_zip = parse_grouplens_zip(grouplens_zip())
    from_wheel = parse_recbole_wheel(recbole_wheel(tmp_path))
    for left, right in zip(from_zip, from_wheel, strict=True):
        assert left.equals(right)


def test_download_is_cached_as_date_partitioned_parquet(tmp_path: Path, archive_url: str) -> None:
    files = load_movielens_100k(tmp_path, MovieLensSources(url=archive_url))
    events = ds.dataset(files.events, partitioning="hive").to_table()
    assert events.num_rows == 3
    assert sorted(set(events.column("date").to_pylist())) == ["1997-12-04", "1998-04-04"]
    assert pq.read_table(files.items).num_rows == 2
    assert files.users is not None and pq.read_table(files.users).num_rows == 2
    again = load_movielens_100k(tmp_path, MovieLensSources(url=UNREACHABLE, timeout=0.5))
    assert again == files  # built once: the second call needs no source


def test_offline_falls_back_to_the_recbole_wheel(tmp_path: Path) -> None:
    wheels = tmp_path / "index"
    wheels.mkdir()
    recbole_wheel(wheels)
    events, items, _ = fetch_movielens_100k(tmp_path / "downloads", _offline(wheels))
    assert events.num_rows == 3
    assert items.column("title").to_pylist() == ["Toy Story", "Four Rooms"]


def test_no_source_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty-index"
    empty.mkdir()
    with pytest.raises(DatasetUnavailableError) as raised:
        load_movielens_100k(tmp_path, _offline(empty))
    message = raised.value.message
    assert UNREACHABLE in message and "recbole==1.2.1 wheel" in message
    assert raised.value.status == 400
    assert not (tmp_path / "movielens-100k").exists()
