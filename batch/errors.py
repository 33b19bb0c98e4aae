"""Errors raised by the batch jobs; every one is a `velox.errors.VeloxError` carrying a status.

::

    BatchError (500)
    ├── DatasetError (400)              a dataset that cannot be built, found or read
    │   ├── DatasetUnavailableError     neither the download nor the offline copy worked
    │   └── EventsSchemaError           events that do not follow the events schema
    ├── SparkClusterError (500)         a Spark master or executors that cannot run the job
    ├── TrainingError (500)             the training job produced unusable factors
    └── GateRejectedError (409)         the new model is worse than the current one
"""

from __future__ import annotations

from velox.errors import VeloxError


class BatchError(VeloxError):
    """Root of every error raised by `batch/`."""


class DatasetError(BatchError):
    """A dataset cannot be built, found or read."""

    status = 400


class DatasetUnavailableError(DatasetError):
    """No source of a named dataset worked; the message says what was tried."""


class EventsSchemaError(DatasetError):
    """Events that do not follow the events schema (missing column, bad value)."""


class SparkClusterError(BatchError):
    """The Spark master cannot be reached, or its executors cannot import Velox."""


class TrainingError(BatchError):
    """The training job produced factors that cannot be published."""


class GateRejectedError(BatchError):
    """The validation gate refused to promote a model worse than the current one."""

    status = 409
