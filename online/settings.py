"""Settings of the service: `VeloxSettings` plus what only the service needs (`VELOX_*`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from online.retrieval.cascade import CascadeConfig
from online.weight_store import DEFAULT_REWARD_WINDOW_S
from velox.errors import InvalidInputError
from velox.policies import make_policy
from velox.settings import VeloxSettings

AppendFsync = Literal["everysec", "always"]


def _checked_spec(spec: str) -> str:
    """`spec` if `make_policy` accepts it (a typo fails at start-up, not on every request)."""
    try:
        make_policy(spec)
    except InvalidInputError as error:
        raise ValueError(error.message) from None
    return spec


class RewardSettings(BaseModel):
    """How rewards join a model's answers: the reward window and the optional default reward.

    A reward for an item shown by `/predict` joins that answer (and gets its propensity) while
    the window is open. When it closes, every shown item that got no reward gets
    `default_reward`, if one is set (as Azure Personalizer does), through the same update as
    `/observe`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: int = Field(default=DEFAULT_REWARD_WINDOW_S, ge=1, le=30 * 86_400)
    default_reward: float | None = Field(default=None, allow_inf_nan=False)


class ServiceSettings(VeloxSettings):
    """How the service serves: policies, limits, polling, the embedded Redis's durability.

    Unsafe values are refused when the settings are built, not discovered under load: no AOF
    mode that can lose acknowledged feedback on a crash (`no`), no unbounded request bodies,
    no polling faster than the registry can be read cheaply, no policy spec that names none.
    """

    policy: str = "thompson"
    model_policies: dict[str, str] = Field(default_factory=dict)
    seed: int | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=256, le=1024 * 1024)
    poll_interval_s: float = Field(default=1.0, ge=0.05, le=3600.0)
    redis_appendfsync: AppendFsync = "everysec"
    redis_timeout_s: float = Field(default=2.0, gt=0.0, le=60.0)
    recent_events: int = Field(default=1000, ge=1, le=1_000_000)
    dedupe_window: int = Field(default=10_000, ge=1, le=1_000_000)
    prediction_ttl_s: int = Field(default=DEFAULT_REWARD_WINDOW_S, ge=1, le=30 * 86_400)
    default_reward: float | None = Field(default=None, allow_inf_nan=False)
    model_rewards: dict[str, RewardSettings] = Field(default_factory=dict)
    reward_sweep_interval_s: float = Field(default=1.0, ge=0.05, le=3600.0)
    decision_log_maxlen: int = Field(default=100_000, ge=0)
    # API keys (online.access): `role:key,...` or JSON; a SecretStr, never shown in a repr.
    api_keys: SecretStr | None = None
    api_keys_file: Path | None = None
    redis_wait_replicas: int = Field(default=0, ge=0, le=16)
    redis_wait_timeout_ms: int = Field(default=100, ge=1, le=60_000)
    ann_retrieval: bool = True
    ann_gated: bool = True
    ann_gate_margin: float = Field(default=CascadeConfig.gate_margin, ge=0.0, le=100.0)
    ann_scan_share: float = Field(default=CascadeConfig.scan_share, gt=0.0, le=1.0)
    ann_random_rows: int = Field(default=CascadeConfig.random_rows, ge=0, le=100_000)
    # torch's intra-op threads in a service process once it loads an item tower (0: torch's
    # default, one a core); see online.featurize.tower.limit_torch_threads.
    featurize_threads: int = Field(default=1, ge=0, le=256)
    # PUT /items featurization (online.featurize): the AIMD controller's batch-latency target
    # (a request waits about two batches) and how long a short batch waits for more.
    featurize_batch_slo_ms: float = Field(default=20.0, gt=0.0, le=60_000.0)
    featurize_max_wait_ms: float = Field(default=2.0, ge=0.0, le=1_000.0)

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        return _checked_spec(value)

    @field_validator("model_policies")
    @classmethod
    def _known_policies(cls, value: dict[str, str]) -> dict[str, str]:
        return {model: _checked_spec(spec) for model, spec in value.items()}

    def rewards_for(self, model: str) -> RewardSettings:
        """The reward window and default reward of `model` (`VELOX_MODEL_REWARDS` first, else
        `VELOX_PREDICTION_TTL_S` and `VELOX_DEFAULT_REWARD`)."""
        found = self.model_rewards.get(model)
        if found is not None:
            return found
        return RewardSettings(window_s=self.prediction_ttl_s, default_reward=self.default_reward)

    def cascade_config(self) -> CascadeConfig | None:
        """The retrieval cascade's knobs for snapshots with an ANN index (None: exact scoring
        even where there is one, `VELOX_ANN_RETRIEVAL=false`)."""
        if not self.ann_retrieval:
            return None
        return CascadeConfig(
            gate_margin=self.ann_gate_margin,
            scan_share=self.ann_scan_share,
            random_rows=self.ann_random_rows,
            gated=self.ann_gated,
        )

    def policy_for(self, model: str) -> str:
        """The default exploration policy spec of `model` (e.g. `thompson`, `egreedy:0.1`)."""
        return self.model_policies.get(model, self.policy)
