"""Errors raised by the Velox core; every other package roots its own tree here.

Each exception carries the HTTP status the service answers with, so the service needs a
single handler::

    VeloxError (500)
    ├── InvalidInputError (400)         bad arguments from a caller
    │   ├── DimensionError (400)        a vector or matrix of the wrong shape
    │   ├── NonFiniteError (400)        NaN or infinity where a finite number is required
    │   └── FilterError (400)           a `where` expression that cannot be used
    │       ├── FilterSyntaxError       bad syntax, with the position
    │       ├── UnknownColumnError      a column the catalog does not have
    │       └── FilterTypeError         an operator applied to the wrong type
    ├── NotFoundError (404)             an unknown user, item, model or version
    ├── StateEncodingError (500)        a stored user state that cannot be decoded
    └── ConfigurationError (500)        settings that cannot work

feature_store.errors.FeatureStoreError, online.errors.ServiceError and
batch.errors.BatchError subclass VeloxError.
"""

from __future__ import annotations


class VeloxError(Exception):
    """Root of every Velox error; `status` is the HTTP status the service answers with."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(VeloxError):
    """A caller passed an argument that cannot be used."""

    status = 400


class DimensionError(InvalidInputError):
    """A vector or matrix has the wrong shape."""


class NonFiniteError(InvalidInputError):
    """A NaN or infinite value was given where a finite number is required."""


class FilterError(InvalidInputError):
    """A filter expression cannot be compiled or applied."""

    def __init__(self, message: str, position: int | None = None) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.position = position


class FilterSyntaxError(FilterError):
    """The filter expression is not valid syntax."""


class UnknownColumnError(FilterError):
    """The filter names a column the catalog does not have."""


class FilterTypeError(FilterError):
    """An operator in the filter is applied to a value or column of the wrong type."""


class NotFoundError(VeloxError):
    """An unknown user, item, model or version was asked for."""

    status = 404


class StateEncodingError(VeloxError):
    """A stored user state cannot be decoded (wrong magic, version or length)."""


class ConfigurationError(VeloxError):
    """The settings cannot work (e.g. an unsafe or contradictory combination)."""
