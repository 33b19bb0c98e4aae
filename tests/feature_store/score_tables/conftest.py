"""Fixtures of the score-table tests: a throwaway PostgreSQL database per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres_database import temporary_database


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a database created for this test run and dropped after it."""
    with temporary_database() as url:
        yield url
