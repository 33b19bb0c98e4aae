"""Hash slots of Redis Cluster: which key a command names, and which of the 16384 slots it is in.

A slot is CRC16 of the key's hash tag (the text between the first `{` and the next `}`, when
not empty) or of the whole key, modulo 16384. Every key of one user carries the hash tag of its
log partition (`online.redis_keys`), so one user's commands and scripts land in one slot.
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Sequence

SLOTS = 16384

Node = tuple[str, int]
"""A cluster node as (host, port)."""

KEYLESS = frozenset(
    {"PING", "WAIT", "ASKING", "SCRIPT", "CLUSTER", "INFO", "ECHO", "TIME", "AUTH", "SELECT",
     "READONLY", "READWRITE", "DBSIZE", "FLUSHALL", "CONFIG"}
)  # fmt: skip
"""Commands of the service that name no key (sent with the keyed command before them)."""

SCRIPTS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})
"""Commands whose keys follow a key count: `EVALSHA sha numkeys key...`."""


def key_of(command: Sequence[str | bytes | int | float]) -> str | bytes | None:
    """The first key `command` names, or None for a keyless command."""
    name = command[0]
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        kind = _kind(name)
    if kind == _KEYLESS or len(command) < 2:
        return None
    if kind == _SCRIPT:
        if len(command) < 4 or int(command[2]) < 1:
            return None
        key = command[3]
    else:
        key = command[1]
    return key if isinstance(key, str | bytes) else str(key)


_KEYLESS, _SCRIPT, _KEYED = 0, 1, 2
_KINDS: dict[str, int] = {}
"""Command name -> kind, filled as names are met (the service sends a few dozen)."""


def _kind(name: str | bytes | int | float) -> int:
    text = name.decode() if isinstance(name, bytes) else str(name)
    upper = text.upper()
    kind = _KEYLESS if upper in KEYLESS else _SCRIPT if upper in SCRIPTS else _KEYED
    if isinstance(name, str) and len(_KINDS) < 1024:
        _KINDS[name] = kind
    return kind


KEY_CACHE_SIZE = 65_536
"""Keys whose slot stays cached (the service builds a user's key strings once and reuses
them, so a dict lookup of the same string object replaces a CRC16 per command)."""

_SLOT_OF_KEY: dict[str | bytes, int] = {}


def slot_of(key: str | bytes) -> int:
    """The hash slot of `key` (its hash tag's, when it has one)."""
    slot = _SLOT_OF_KEY.get(key)
    if slot is None:
        slot = _slot(key.encode() if isinstance(key, str) else key)
        if len(_SLOT_OF_KEY) >= KEY_CACHE_SIZE:
            _SLOT_OF_KEY.clear()
        _SLOT_OF_KEY[key] = slot
    return slot


def _slot(raw: bytes) -> int:
    start = raw.find(b"{")
    if start > -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return crc_hqx(raw, 0) % SLOTS
