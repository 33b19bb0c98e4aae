"""`GET /dashboard`: the operator's page, its static assets and its JSON data endpoints.

Read-only: every route is a GET and none changes state. The assets ship inside the package
(`online/dashboard/static/`) and are read once at import; the page loads nothing else.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from online.dashboard.learning import learning
from online.dashboard.ope import CANDIDATES, off_policy
from online.dashboard.overview import overview
from online.dashboard.panels import PANELS
from online.dashboard.schemas import (
    ExtensionsResponse,
    LearningResponse,
    OpeResponse,
    OverviewResponse,
    PanelsResponse,
    TrafficResponse,
)
from online.dashboard.state import DashboardState
from online.dashboard.traffic import request_totals
from online.deps import ServiceDep
from velox.errors import NotFoundError
from velox.policies import make_policy

router = APIRouter(tags=["dashboard"])

_STATIC = files("online.dashboard") / "static"
ASSETS = {
    name: (_STATIC.joinpath(name).read_bytes(), media)
    for name, media in (
        ("index.html", "text/html; charset=utf-8"),
        ("charts.js", "text/javascript; charset=utf-8"),
        ("panels.js", "text/javascript; charset=utf-8"),
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
    )
}
"""Each asset's bytes and media type."""


async def get_dashboard(request: Request) -> DashboardState:
    """The app's `DashboardState` (created with the app)."""
    state: DashboardState = request.app.state.dashboard
    return state


DashboardDep = Annotated[DashboardState, Depends(get_dashboard)]
ModelQuery = Annotated[str | None, Query(description="served model (default: the default)")]


def _asset(name: str) -> Response:
    body, media = ASSETS[name]
    return Response(body, media_type=media, headers={"cache-control": "no-cache"})


@router.get("/dashboard", response_class=Response)
async def dashboard_page() -> Response:
    """The dashboard page (HTML; its panels fetch `/dashboard/data/...`)."""
    return _asset("index.html")


@router.get("/dashboard/static/{name}", response_class=Response)
async def dashboard_asset(name: str) -> Response:
    """The page's script and style sheet."""
    if name not in ASSETS or name == "index.html":
        raise NotFoundError(f"no dashboard asset {name!r}")
    return _asset(name)


@router.get("/dashboard/data/panels", response_model=PanelsResponse)
async def panels(service: ServiceDep) -> PanelsResponse:
    """The panels of the page, the served models and the candidate policies of OPE."""
    current = service.models
    return PanelsResponse(
        panels=list(PANELS),
        models=sorted(current.models),
        default_model=current.default,
        ope_policies=list(CANDIDATES),
    )


@router.get("/dashboard/data/overview", response_model=OverviewResponse)
async def overview_data(service: ServiceDep, state: DashboardDep) -> OverviewResponse:
    """Each served model: manifest, training metrics, versions, CURRENT, retrain cycles."""
    return await overview(service, state)


@router.get("/dashboard/data/traffic", response_model=TrafficResponse)
async def traffic_data(service: ServiceDep, state: DashboardDep) -> TrafficResponse:
    """Requests/s, latency percentiles, errors and Redis round trips of this worker."""
    predictions, observations = request_totals(service.metrics)
    return state.traffic.report(predictions, observations)


@router.get("/dashboard/data/learning", response_model=LearningResponse)
async def learning_data(
    service: ServiceDep, state: DashboardDep, model: ModelQuery = None
) -> LearningResponse:
    """Rewards over time, explored share, propensity histogram, users with online state."""
    return await learning(state, service.models.get(model))


@router.get("/dashboard/data/ope", response_model=OpeResponse)
async def ope_data(
    service: ServiceDep,
    state: DashboardDep,
    policy: Annotated[str | None, Query(description="target policy spec (default: served)")] = None,
    model: ModelQuery = None,
) -> OpeResponse:
    """IPS, SNIPS and DR estimates of `policy` on the recent rewarded answers."""
    served = service.models.get(model)
    spec = policy if policy is not None else served.policy.spec
    # The served policy itself (with the scale it was built with) when it is the one asked.
    target = served.policy if spec == served.policy.spec else make_policy(spec, seed=0)
    return await off_policy(state, served, spec, target)


@router.get("/dashboard/data/extensions", response_model=ExtensionsResponse)
async def extensions_data(service: ServiceDep, state: DashboardDep) -> ExtensionsResponse:
    """The optional panels (score tables, items added online, featurization batching)."""
    return await state.extensions.report(service)
