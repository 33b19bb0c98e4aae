"""The score-table examples quickstart prints survive odd user ids and name a non-default model."""

from __future__ import annotations

import shlex
from urllib.parse import parse_qs, urlsplit

from jobs.quickstart import score_table_examples


def _url(curl: str) -> str:
    words = shlex.split(curl)
    assert words[0] == "curl"
    return words[1]


def test_default_model_examples_name_no_model() -> None:
    query, curl = score_table_examples(8000, "u7", "default")
    assert query == "velox query --user u7 -k 5"
    assert curl == "curl 'http://127.0.0.1:8000/recommendations?user=u7&k=5'"


def test_odd_user_ids_and_other_models_round_trip() -> None:
    """A user id with spaces, quotes and URL syntax reaches the command and the service as is."""
    user = "a b'&k=9#é"
    query, curl = score_table_examples(8123, user, "movies")
    assert shlex.split(query) == ["velox", "query", "--user", user, "-k", "5", "--model", "movies"]
    url = urlsplit(_url(curl))
    assert (url.netloc, url.path) == ("127.0.0.1:8123", "/recommendations")
    assert parse_qs(url.query) == {"user": [user], "k": ["5"], "model": ["movies"]}
