"""Find or start the staging directory of a build, so that a rerun resumes a crashed one.

A build holds `<model>/score_tables/.materialize.lock` (flock) from choosing its staging
directory to publishing: two materializations of one model never share a staging directory,
and stale ones (another plan, or a version number taken meanwhile) are removed under it.
"""

from __future__ import annotations

import pyarrow as pa
from pyarrow import ipc

from batch.materialize.plan import PLAN, USERS, Plan
from feature_store.score_tables.layout import staging_dir, tables_dir
from feature_store.score_tables.manifest import PartFile
from feature_store.score_tables.publish import staged_parts
from feature_store.score_tables.versions import next_table_version, staged_table_versions
from feature_store.storage import SnapshotStorage, sha256_hex

BUILD_LOCK = ".materialize.lock"


def build_lock(model: str) -> str:
    """The lock a build holds, relative to the snapshot root."""
    return f"{tables_dir(model)}/{BUILD_LOCK}"


def users_file(users: pa.Table) -> bytes:
    """The `.users.arrow` bytes of the selected users (one record batch)."""
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, users.schema) as writer:
        writer.write_table(users.combine_chunks())
    return bytes(sink.getvalue())


def users_digest(data: bytes) -> str:
    """The sha256 that ties a plan to its users file."""
    return sha256_hex(data)


def _staged_plan(storage: SnapshotStorage, model: str, version: int) -> Plan | None:
    try:
        return Plan.from_json(storage.read_bytes(f"{staging_dir(model, version)}/{PLAN}"))
    except FileNotFoundError:
        return None


def open_staging(
    storage: SnapshotStorage, model: str, plan: Plan, users: bytes
) -> tuple[int, Plan, dict[str, PartFile]]:
    """The table version to build, its plan (a resumed one keeps its parts) and finished parts.

    Call with the build lock held. A staging directory of the same build that is still the
    next version is resumed; every other staging directory is removed.
    """
    version = next_table_version(storage, model)
    resumed: Plan | None = None
    for staged in staged_table_versions(storage, model):
        found = _staged_plan(storage, model, staged)
        if staged == version and plan.same_build(found) and found is not None:
            resumed = found
        else:
            storage.remove_tree(staging_dir(model, staged))
    directory = staging_dir(model, version)
    if resumed is not None:
        return version, resumed, staged_parts(storage, model, version)
    storage.make_dir(directory)
    with storage.open_write(f"{directory}/{USERS}") as writer:
        writer.write(users)
    storage.replace_file(f"{directory}/{PLAN}", plan.to_json())  # the plan last: it vouches
    return version, plan, {}


def drop_plan(storage: SnapshotStorage, model: str, version: int) -> None:
    """Remove the build's own files from a staging directory before it is published."""
    directory = staging_dir(model, version)
    for name in (PLAN, USERS):
        if storage.is_file(f"{directory}/{name}"):
            storage.remove_file(f"{directory}/{name}")
