"""Fixtures of the materialize tests: the job tests' flushed Redis."""

from tests.jobs.conftest import redis_url

__all__ = ["redis_url"]
