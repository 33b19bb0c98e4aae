"""Which score table versions a model has, which one is current, and their verification."""

from __future__ import annotations

from feature_store.score_tables.errors import ScoreTableCorruptError, ScoreTableNotFoundError
from feature_store.score_tables.layout import (
    MANIFEST,
    current_file,
    parse_staging_dir,
    parse_table_dir,
    table_dir,
    tables_dir,
)
from feature_store.score_tables.manifest import TableManifest
from feature_store.storage import SnapshotStorage, sha256_hex


def list_table_versions(storage: SnapshotStorage, model: str) -> list[int]:
    """Published table versions of `model` (a directory with a manifest), ascending."""
    found = []
    for name in storage.list_dir(tables_dir(model)):
        version = parse_table_dir(name)
        if version is not None and storage.is_file(f"{table_dir(model, version)}/{MANIFEST}"):
            found.append(version)
    return sorted(found)


def staged_table_versions(storage: SnapshotStorage, model: str) -> list[int]:
    """Table versions with a staging directory (builds in progress or crashed), ascending."""
    names = storage.list_dir(tables_dir(model))
    return sorted(v for v in map(parse_staging_dir, names) if v is not None)


def next_table_version(storage: SnapshotStorage, model: str) -> int:
    """One more than the highest published table version (1 for the first)."""
    return max(list_table_versions(storage, model), default=0) + 1


def current_table_version(storage: SnapshotStorage, model: str) -> int | None:
    """The version `CURRENT` names, or None before the first publish."""
    try:
        raw = storage.read_bytes(current_file(model))
    except FileNotFoundError:
        return None
    text = raw.decode("ascii", errors="replace").strip()
    version = parse_table_dir(text)
    if version is None:
        raise ScoreTableCorruptError(f"score table CURRENT of {model!r} holds {raw[:40]!r}")
    return version


def read_table_manifest(storage: SnapshotStorage, model: str, table_version: int) -> TableManifest:
    """The manifest of one table version; named errors when missing or not this version's."""
    directory = table_dir(model, table_version)
    if not storage.is_dir(directory):
        raise ScoreTableNotFoundError(f"model {model!r} has no score table {table_version}")
    try:
        manifest = TableManifest.from_json(storage.read_bytes(f"{directory}/{MANIFEST}"))
    except FileNotFoundError as error:
        raise ScoreTableCorruptError(f"{directory}/{MANIFEST} is missing") from error
    if manifest.model != model or manifest.table_version != table_version:
        raise ScoreTableCorruptError(
            f"{directory}/{MANIFEST} describes {manifest.model!r} table {manifest.table_version}"
        )
    return manifest


def verify_table(storage: SnapshotStorage, model: str, table_version: int) -> TableManifest:
    """Read the manifest and check every part's sha256; `ScoreTableCorruptError` if any differ."""
    manifest = read_table_manifest(storage, model, table_version)
    directory = table_dir(model, table_version)
    for name, part in sorted(manifest.files.items()):
        try:
            digest = sha256_hex(storage.read_buffer(f"{directory}/{name}"))
        except FileNotFoundError as error:
            raise ScoreTableCorruptError(f"{directory}/{name} is missing") from error
        if digest != part.sha256:
            raise ScoreTableCorruptError(
                f"{directory}/{name} does not match its sha256 in the manifest"
            )
    return manifest
