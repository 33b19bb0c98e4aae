"""Errors of the score tables; the root subclasses `feature_store.errors.FeatureStoreError`.

Each carries the HTTP status the service answers with (spec: docs/score_tables.md)::

    ScoreTableError (500)
    ├── ScoreTableCorruptError (500)     bad checksum, missing part, unreadable manifest or
    │                                    CURRENT: the table is refused, the old one keeps serving
    ├── ScoreTableNotFoundError (404)    the model has no such table version, or no table at all
    ├── InvalidScoreTableError (400)     what a job hands to publish cannot be stored as a table
    └── ScoreEngineError (503)           the query engine (DuckDB, PostgreSQL) failed or is down
"""

from __future__ import annotations

from feature_store.errors import FeatureStoreError
from velox.errors import InvalidInputError, NotFoundError


class ScoreTableError(FeatureStoreError):
    """Root of every score-table error."""

    status = 500


class ScoreTableCorruptError(ScoreTableError):
    """A stored table or its pointer cannot be trusted: checksum, missing file, bad JSON."""

    status = 500


class ScoreTableNotFoundError(ScoreTableError, NotFoundError):
    """The model has no score table (or not the version asked for)."""

    status = 404


class InvalidScoreTableError(ScoreTableError, InvalidInputError):
    """The parts or metadata handed to publish do not form a valid table."""

    status = 400


class ScoreEngineError(ScoreTableError):
    """The query engine could not answer (connection lost, server down)."""

    status = 503
