"""Names of the files and directories of a snapshot root (spec: docs/snapshot_format.md).

<root>/<model>/CURRENT              JSON pointer: current version + promotion history
<root>/<model>/v<N>/manifest.json   one immutable version
<root>/<model>/v<N>/items.arrow
<root>/<model>/v<N>/users.arrow
<root>/<model>/v<N>/weights.safetensors   (optional)
<root>/<model>/v<N>/tower.json            (kind deep: the item tower's input spec)
<root>/<model>/v<N>/index.faiss           (optional: the ANN index of a large catalog)
<root>/<model>/.tmp-<uuid>/         a publish in progress (or a crashed one, for gc)
<root>/<model>/.CURRENT.tmp-<uuid>  a CURRENT replacement in progress (same)
"""

from __future__ import annotations

import re
import uuid

from feature_store.errors import InvalidModelNameError

MANIFEST = "manifest.json"
ITEMS = "items.arrow"
USERS = "users.arrow"
WEIGHTS = "weights.safetensors"
TOWER_SPEC = "tower.json"
INDEX = "index.faiss"
CURRENT = "CURRENT"
LOCK = ".lock"
TMP_PREFIX = ".tmp-"

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VERSION_DIR = re.compile(r"v([1-9][0-9]{0,17})")


def check_model_name(model: str) -> str:
    """Return `model` if it is one safe path component, else raise `InvalidModelNameError`."""
    if not _MODEL_NAME.fullmatch(model):
        raise InvalidModelNameError(
            f"invalid model name {model!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return model


def version_dir(version: int) -> str:
    """The directory name of a version, e.g. `v7`."""
    return f"v{version}"


def parse_version_dir(name: str) -> int | None:
    """The version number of a directory name like `v7`, or None for any other name."""
    match = _VERSION_DIR.fullmatch(name)
    return int(match.group(1)) if match else None


def temp_name(prefix: str = TMP_PREFIX) -> str:
    """A fresh, unique name for a temporary file or directory (hidden: starts with '.')."""
    return f"{prefix}{uuid.uuid4().hex}"


def replacement_prefix(name: str) -> str:
    """Prefix of the temporary file that atomically replaces the file `name`."""
    return f".{name}{TMP_PREFIX}"
