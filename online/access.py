"""Access control: API keys sent as bearer tokens, each with a role, checked before any route.

Roles are ordered, each allowing what the ones below it allow:

    admin   anything that changes models (promote, rollback, ...): every method and path
    write   POST /observe and PUT /items/{item}
    read    every GET (/predict, /recommendations, /models, /metrics, /dashboard, ...), and only
            while at least one read key is configured; otherwise reads are open

/healthz, /readyz and the API docs are always open (load balancers and people probe them).
A method and path not named above needs admin, so a new route that changes state is closed
until it is given a role here. With no key configured at all nothing is checked, which
`velox serve` allows on loopback addresses only (or with `--insecure`).

A key goes in `Authorization: Bearer KEY`; a browser may send it as the password of Basic
credentials (any user name), which it asks for when a 401 offers both.

Keys come from `VELOX_API_KEYS` or the file at `VELOX_API_KEYS_FILE`, as `role:key` entries
separated by commas or newlines (`#` starts a comment line), or as JSON `{"role": ["key",
...]}`. Only their SHA-256 digests are kept; a presented key is hashed and compared with every
digest by `hmac.compare_digest`, all of them every time, so neither the time taken nor an early
exit tells which key (or how much of one) matched. Keys never appear in messages or logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from fastapi import Request, Response
from pydantic import SecretStr
from starlette.types import Scope

from online.errors import ServiceError, velox_error_response
from velox.errors import ConfigurationError

MIN_KEY_CHARS = 16
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc",
                        "/openapi.json"})  # fmt: skip
READ_METHODS = frozenset({"GET", "HEAD"})


class Role(IntEnum):
    """What a key may do; a higher role may do everything a lower one may."""

    READ = 1
    WRITE = 2
    ADMIN = 3


class AccessConfigError(ConfigurationError):
    """Keys that cannot be read, or an open service on a non-loopback address."""


class UnauthorizedError(ServiceError):
    """No API key, or one that is not configured."""

    status = 401


class ForbiddenError(ServiceError):
    """An API key whose role is below what the route needs."""

    status = 403


def required_role(method: str, path: str) -> Role | None:
    """The least role that may call `method path`; None for the always-open paths."""
    if path in OPEN_PATHS:
        return None
    if method in READ_METHODS:
        return Role.READ
    if (method == "POST" and path == "/observe") or (
        method == "PUT" and path.startswith("/items/")
    ):
        return Role.WRITE
    return Role.ADMIN


def _role_named(name: str, where: str) -> Role:
    try:
        return Role[name.strip().upper()]
    except KeyError:
        raise AccessConfigError(
            f"{where}: unknown role {name.strip()!r} (expected read, write or admin)"
        ) from None


def _checked_key(key: str, where: str) -> bytes:
    key = key.strip()
    if len(key) < MIN_KEY_CHARS:
        raise AccessConfigError(f"{where}: a key must have at least {MIN_KEY_CHARS} characters")
    if not key.isascii() or not key.isprintable() or " " in key:
        raise AccessConfigError(f"{where}: a key must be printable ASCII without spaces")
    return key.encode("ascii")


def parse_keys(text: str, source: str) -> list[tuple[Role, bytes]]:
    """The (role, key) pairs of `text` in either format; `AccessConfigError` naming the entry
    (never the key) when one is malformed."""
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise AccessConfigError(f"{source}: not valid JSON ({error.msg})") from None
        pairs: list[tuple[Role, bytes]] = []
        for name, keys in document.items():
            if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
                raise AccessConfigError(f"{source}: role {name!r} needs a list of key strings")
            role = _role_named(name, source)
            pairs += [(role, _checked_key(key, f"{source} [{name}]")) for key in keys]
        return pairs
    entries = [e.strip() for line in text.splitlines() if not line.lstrip().startswith("#")
               for e in line.split(",") if e.strip()]  # fmt: skip
    pairs = []
    for number, entry in enumerate(entries, 1):
        where = f"{source} entry {number}"
        name, colon, key = entry.partition(":")
        if not colon:
            raise AccessConfigError(f"{where}: expected ROLE:KEY")
        pairs.append((_role_named(name, where), _checked_key(key, where)))
    return pairs


@dataclass(frozen=True)
class KeyRing:
    """The configured keys, as digests with their roles."""

    digests: tuple[tuple[bytes, Role], ...]

    @classmethod
    def of(cls, pairs: list[tuple[Role, bytes]]) -> KeyRing:
        """The ring of `pairs` (role, key)."""
        return cls(tuple((hashlib.sha256(key).digest(), role) for role, key in pairs))

    @property
    def reads_need_a_key(self) -> bool:
        """Whether a read key is configured (then every read needs a key)."""
        return any(role == Role.READ for _, role in self.digests)

    def role_of(self, key: bytes) -> Role | None:
        """The role of `key`, or None; compares with every configured key, in constant time."""
        digest = hashlib.sha256(key).digest()
        best = 0
        for known, role in self.digests:
            # No branch on the comparison: every key costs the same whether it matches or not.
            best = max(best, role * hmac.compare_digest(digest, known))
        return Role(best) if best else None


def load_keys(api_keys: SecretStr | None, api_keys_file: Path | None) -> KeyRing | None:
    """The keys of the settings (`VELOX_API_KEYS` and the file's), or None when there are none."""
    pairs = []
    if api_keys is not None:
        pairs += parse_keys(api_keys.get_secret_value(), "VELOX_API_KEYS")
    if api_keys_file is not None:
        try:
            text = api_keys_file.read_text()
        except OSError as error:
            raise AccessConfigError(
                f"VELOX_API_KEYS_FILE {api_keys_file}: {error.strerror or error}"
            ) from None
        pairs += parse_keys(text, f"VELOX_API_KEYS_FILE {api_keys_file}")
    return KeyRing.of(pairs) if pairs else None


def presented_key(scope: Scope) -> bytes | None:
    """The key of the call's `Authorization` header: a bearer token, or the password of Basic
    credentials (a browser asks for those on /dashboard, and then sends them with every fetch
    of the page); b"" for another scheme, None without the header."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            scheme = scheme.lower()
            if scheme == b"bearer":
                key: bytes = token.strip()
                return key
            if scheme == b"basic":
                try:
                    return base64.b64decode(token.strip(), validate=True).partition(b":")[2]
                except binascii.Error:
                    return b""
            return b""
    return None


class AccessGate:
    """Decides, from an HTTP scope alone, whether the call may go on (`DirectRoutesApp`)."""

    def __init__(self, keys: KeyRing) -> None:
        """Check calls against `keys`."""
        self._keys = keys
        self._least = Role.READ if keys.reads_need_a_key else Role.WRITE

    def refusal(self, scope: Scope) -> ServiceError | None:
        """None when the call may go on, else the 401 or 403 error to answer with."""
        needed = required_role(scope["method"], scope["path"])
        if needed is None or needed < self._least:
            return None
        token = presented_key(scope)
        if not token:
            return UnauthorizedError("missing API key: send the header Authorization: Bearer KEY")
        role = self._keys.role_of(token)
        if role is None:
            return UnauthorizedError("invalid API key")
        if role < needed:
            return ForbiddenError(
                f"{scope['method']} {scope['path']} needs a {needed.name.lower()} key; "
                f"this key's role is {role.name.lower()}"
            )
        return None


def refusal_response(request: Request, error: ServiceError) -> Response:
    """The counted `{"error": message}` answer to a refusal; a 401 says to send a bearer key."""
    response = velox_error_response(request, error)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="velox", Basic realm="velox"'
    return response


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys: KeyRing | None, insecure: bool) -> None:
    """Refuse (`AccessConfigError`) to serve a non-loopback `host` with no key, unless
    `insecure`."""
    if keys is None and not insecure and not is_loopback(host):
        raise AccessConfigError(
            f"refusing to serve {host} with no API key configured: set VELOX_API_KEYS or "
            "VELOX_API_KEYS_FILE (README: Access control), or pass --insecure"
        )
