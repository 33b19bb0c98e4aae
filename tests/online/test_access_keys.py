"""API keys without a server: formats, role order, the comparison, binding, secrecy."""

from __future__ import annotations

import hmac
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from online.access import (
    AccessConfigError,
    KeyRing,
    Role,
    check_bind,
    is_loopback,
    load_keys,
    parse_keys,
    required_role,
)
from online.settings import ServiceSettings

KEYS = {Role.READ: b"read-key-3f9c2a71d0b84e65", Role.WRITE: b"write-key-8b1e47c2a9d35f06",
        Role.ADMIN: b"admin-key-c07d5e9a2b46f183"}  # fmt: skip


def test_both_formats_give_the_same_keys(tmp_path: Path) -> None:
    listed = "# ops keys\nread:read-key-3f9c2a71d0b84e65, write:write-key-8b1e47c2a9d35f06\n\n"
    listed += "admin:admin-key-c07d5e9a2b46f183\n"
    as_json = (
        '{"read": ["read-key-3f9c2a71d0b84e65"], "write": ["write-key-8b1e47c2a9d35f06"],'
        ' "admin": ["admin-key-c07d5e9a2b46f183"]}'
    )
    expected = sorted(KEYS.items())
    assert sorted(parse_keys(listed, "x")) == sorted(parse_keys(as_json, "x")) == expected
    # From the variable and the file together; none at all is None (nothing is checked).
    keys_file = tmp_path / "keys"
    keys_file.write_text("admin:admin-key-c07d5e9a2b46f183\n")
    ring = load_keys(ServiceSettings(api_keys="write:write-key-8b1e47c2a9d35f06").api_keys,
                     keys_file)  # fmt: skip
    assert ring is not None and len(ring.digests) == 2 and not ring.reads_need_a_key
    assert load_keys(None, None) is None
    with pytest.raises(AccessConfigError, match=r"VELOX_API_KEYS_FILE .*missing"):
        load_keys(None, tmp_path / "missing")


def test_roles_are_ordered_and_routes_need_the_least_role() -> None:
    assert Role.READ < Role.WRITE < Role.ADMIN
    assert required_role("GET", "/predict") == required_role("GET", "/dashboard/data/ope")
    assert required_role("GET", "/predict") == Role.READ
    assert required_role("POST", "/observe") == required_role("PUT", "/items/a%2Fb") == Role.WRITE
    assert required_role("POST", "/models/m/promote") == Role.ADMIN
    assert required_role("POST", "/predict") == Role.ADMIN  # unknown writes are closed
    assert required_role("GET", "/healthz") is None and required_role("POST", "/readyz") is None


@given(st.lists(st.sampled_from(list(KEYS)), min_size=1, max_size=6), st.data())
def test_a_key_gets_its_role_after_a_comparison_with_every_key(
    roles: list[Role], data: st.DataObject
) -> None:
    pairs = [(role, KEYS[role] + str(i).encode() * (i + 1)) for i, role in enumerate(roles)]
    ring = KeyRing.of(pairs)
    index = data.draw(st.integers(0, len(pairs)))
    presented = pairs[index][1] if index < len(pairs) else b"not-a-configured-key"
    seen: list[tuple[int, int]] = []
    original = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        seen.append((len(a), len(b)))
        return original(a, b)

    hmac.compare_digest = counting  # type: ignore[assignment]
    try:
        found = ring.role_of(presented)
    finally:
        hmac.compare_digest = original
    assert found == (pairs[index][0] if index < len(pairs) else None)
    # Every configured key is compared, whichever matched, and always as 32-byte digests:
    # neither the count nor the lengths depend on the key presented.
    assert seen == [(32, 32)] * len(pairs)


def test_the_highest_role_of_a_key_given_twice_wins() -> None:
    key = b"shared-key-0123456789abcdef"
    assert KeyRing.of([(Role.WRITE, key), (Role.READ, key)]).role_of(key) == Role.WRITE


def test_keys_are_not_in_the_settings_repr_or_dump() -> None:
    settings = ServiceSettings(api_keys="admin:admin-key-c07d5e9a2b46f183")
    assert "admin-key-c07d5e9a2b46f183" not in repr(settings) + str(settings.model_dump())


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_may_serve_without_keys(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None, insecure=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org"])  # noqa: S104
def test_other_addresses_need_keys_or_insecure(host: str) -> None:
    with pytest.raises(AccessConfigError, match=f"refusing to serve {re.escape(host)} "):
        check_bind(host, None, insecure=False)
    check_bind(host, None, insecure=True)
    check_bind(host, KeyRing.of([(Role.WRITE, KEYS[Role.WRITE])]), insecure=False)
