"""Errors raised by the feature store; the root subclasses `velox.errors.VeloxError`.

Each exception carries the HTTP status the service answers with. The 404s also subclass
`velox.errors.NotFoundError` and the 400s `velox.errors.InvalidInputError`, so code that
catches the core categories catches these too::

    FeatureStoreError (500)
    ├── SnapshotCorruptError (500)          checksum mismatch, missing file, unreadable manifest
    │                                       or CURRENT pointer: the stored bytes cannot be trusted
    ├── InvalidSnapshotDataError (400)      what a training job hands to publish cannot be stored
    │   ├── InvalidFactorsError (400)       NaN/inf, wrong shape or dtype, length mismatch,
    │   │                                   missing or duplicate ids (at publish AND at load)
    │   └── InvalidAttributesError (400)    item attributes of an unsupported type, wrong row
    │                                       count or a reserved column name
    ├── InvalidModelNameError (400)         a model name that is not one safe path component
    ├── ModelNotFoundError (404)            no snapshot was ever published for the model
    ├── VersionNotFoundError (404)          the model has no such version
    ├── NoCurrentVersionError (404)         the model has versions but none is current
    └── NoRollbackTargetError (409)         rollback asked for with no earlier current version

The snapshot layout these errors guard is specified in docs/snapshot_format.md.
"""

from __future__ import annotations

from velox.errors import InvalidInputError, NotFoundError, VeloxError


class FeatureStoreError(VeloxError):
    """Root of every feature-store error."""

    status = 500


class SnapshotCorruptError(FeatureStoreError):
    """A stored snapshot or pointer is damaged: bad checksum, missing file, unreadable JSON."""

    status = 500


class InvalidSnapshotDataError(FeatureStoreError, InvalidInputError):
    """The data handed to publish cannot be stored as a snapshot."""

    status = 400


class InvalidFactorsError(InvalidSnapshotDataError):
    """Factors or their ids are unusable: NaN/inf, wrong shape or dtype, bad or duplicate ids."""


class InvalidAttributesError(InvalidSnapshotDataError):
    """Item attributes have an unsupported type, the wrong row count or a reserved name."""


class InvalidModelNameError(FeatureStoreError, InvalidInputError):
    """A model name is not a single safe path component."""

    status = 400


class ModelNotFoundError(FeatureStoreError, NotFoundError):
    """No snapshot was ever published for this model."""

    status = 404


class VersionNotFoundError(FeatureStoreError, NotFoundError):
    """The model has no version with this number."""

    status = 404


class NoCurrentVersionError(FeatureStoreError, NotFoundError):
    """The model has published versions but none has been made current."""

    status = 404


class NoRollbackTargetError(FeatureStoreError):
    """Rollback was asked for but no version was current before the present one."""

    status = 409
