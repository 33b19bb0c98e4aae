"""Service settings refuse unsafe or unworkable values when they are built."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from online.settings import ServiceSettings


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("redis_appendfsync", "no"),
        ("max_body_bytes", 10 * 1024 * 1024),
        ("poll_interval_s", 0.0),
        ("redis_url", "http://localhost:6379"),
        ("redis_timeout_s", 0.0),
        ("policy", "thompsen"),
        ("model_policies", {"movies": "egreedy:2.0"}),
    ],
)
def test_unsafe_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        ServiceSettings.model_validate({field: value})


def test_environment_sets_the_policy_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELOX_POLICY", "egreedy:0.2")
    monkeypatch.setenv("VELOX_MODEL_POLICIES", '{"movies": "linucb:1.5"}')
    settings = ServiceSettings()
    assert settings.policy_for("movies") == "linucb:1.5"
    assert settings.policy_for("books") == "egreedy:0.2"
    assert settings.redis_appendfsync == "everysec"
