"""Errors raised by the scheduled jobs; the root subclasses `velox.errors.VeloxError`.

::

    JobError (500)
    ├── CycleBusyError (409)        another process holds the model's retrain cycle lock
    ├── LockLostError (409)         the cycle lock expired under its holder (not renewed in time)
    └── ScheduleError (400)         a schedule that cannot work (bad cron, nothing to trigger on)
"""

from __future__ import annotations

from velox.errors import VeloxError


class JobError(VeloxError):
    """Root of every error raised by `jobs/`."""


class CycleBusyError(JobError):
    """Another process is running a retrain cycle of the same model."""

    status = 409


class LockLostError(JobError):
    """The cycle lock expired before its holder finished; the cycle must not publish."""

    status = 409


class ScheduleError(JobError):
    """The scheduler's options cannot work."""

    status = 400
