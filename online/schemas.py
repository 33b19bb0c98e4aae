"""Request and response shapes of the HTTP API (ARCHITECTURE.md, "Interfaces users rely on").

Requests are pydantic models validated in one call each (`model_validate` on the query,
`model_validate_json` on the raw body): FastAPI's per-parameter validation cost more than all
the scoring work of a /predict. Responses are TypedDicts: typed for mypy, rendered in the
OpenAPI schema through `response_model`, and serialized by orjson without a second validation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Response
from orjson import dumps
from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints
from typing_extensions import TypedDict

Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MAX_K = 1000


class PredictQuery(BaseModel):
    """Query of `GET /predict`: top-k for `user`, or the score of one `item` when given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: Id
    k: int = Field(default=10, ge=1, le=MAX_K)
    item: Id | None = None
    model: Id | None = None
    where: Annotated[str, StringConstraints(max_length=2000)] | None = None
    explore: bool = True
    exclude_seen: bool = False
    policy: Annotated[str, StringConstraints(max_length=64)] | None = None


class ObserveRequest(BaseModel):
    """Body of `POST /observe`: one reward for one item shown to one user."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: Id
    item: Id
    # A JSON number only (not true or "5"); its range is VELOX_REWARD_MIN..VELOX_REWARD_MAX.
    reward: Annotated[float, Strict(), Field(allow_inf_nan=False)]
    model: Id | None = None
    prediction_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    timestamp: datetime | None = None


class RankedItem(TypedDict):
    """One recommended item: its id, posterior-mean score and the probability it was shown."""

    item: str
    score: float
    propensity: float


class PredictResponse(TypedDict):
    """Answer of `GET /predict?user=U&k=K`."""

    user: str
    model: str
    version: int
    prediction_id: str
    items: list[RankedItem]


class ScoreResponse(TypedDict):
    """Answer of `GET /predict?user=U&item=I`: the score and its predictive std."""

    user: str
    item: str
    model: str
    score: float
    std: float
    version: int


class ObserveResponse(TypedDict):
    """Answer of `POST /observe`, sent once the event is logged and the posterior includes it."""

    user: str
    item: str
    model: str
    version: int
    event_id: str
    duplicate: bool
    log_id: str | None
    joined: bool | None
    """Whether the reward joined its `prediction_id`'s answer (None: no prediction_id, or a
    duplicate, which applied nothing)."""
    propensity: float | None
    """The probability with which that answer showed the item, when joined."""
    note: str | None
    """Why a reward with a `prediction_id` did not join it (it was still learned from)."""


class ModelInfo(TypedDict):
    """One served model and the snapshot version it serves."""

    model: str
    version: int
    dim: int
    items: int
    kind: str
    created_at: str
    policy: str
    metrics: dict[str, float]
    """The snapshot's evaluation metrics, as `velox train` recorded them (holdout RMSE, …)."""


class ModelsResponse(TypedDict):
    """Answer of `GET /models`."""

    default: str | None
    models: list[ModelInfo]


class StatusResponse(TypedDict):
    """Answer of `/healthz` and `/readyz`."""

    status: str
    detail: str


def json_response(payload: Any, status: int = 200) -> Response:
    """Serialize a response payload with orjson."""
    return Response(dumps(payload), status, media_type="application/json")
