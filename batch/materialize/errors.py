"""Errors of `velox materialize`; the root subclasses `batch.errors.BatchError`.

::

    MaterializeError (500)
    ├── DeviceUnavailableError (400)    --device cuda where torch sees no card
    └── UserSelectionError (400)        a --users value that names no usable users
"""

from __future__ import annotations

from batch.errors import BatchError


class MaterializeError(BatchError):
    """Root of every error raised while materializing a score table."""


class DeviceUnavailableError(MaterializeError):
    """The device asked for does not exist on this machine."""

    status = 400


class UserSelectionError(MaterializeError):
    """The users to materialize cannot be read or selected."""

    status = 400
