"""The /predict query splitter gives exactly the pairs parse_qsl gives (its fast path included)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from online.deps import query_pairs

_TEXT = st.text(alphabet=st.sampled_from("ab=&%+;2Fé x0"), max_size=24)


@given(_TEXT)
def test_query_pairs_match_parse_qsl(query: str) -> None:
    assert query_pairs(query) == dict(parse_qsl(query, keep_blank_values=True))


def test_known_queries() -> None:
    assert query_pairs("user=u1&k=10&where=") == {"user": "u1", "k": "10", "where": ""}
    assert query_pairs("k=1&k=2&explore") == {"k": "2", "explore": ""}
    assert query_pairs("where=price%20%3C%2020&user=a+b") == {"where": "price < 20", "user": "a b"}
