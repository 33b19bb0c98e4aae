"""Optional panels that later parts of the service fill in; "not available" until they do.

The extension point: a part with something to show registers a provider for its panel once,
where the app is wired (the lifespan, after it builds the part; `DashboardState.start` does it
for the parts it knows, see `providers`):

    app.state.dashboard.extensions.register("score_tables", provider)

`provider(service)` is awaited on each refresh and returns the panel's numbers as
`ExtensionMetric`s (label, value, unit), or None while it has none (the panel then says
what it would show). It must be cheap (it
runs on the event loop; read what the part already keeps, never Redis scans or file walks).
A provider that raises shows its error on the panel instead of breaking the page. A part
that needs charts rather than numbers gets a panel of its own (see `online.dashboard`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from online.dashboard.schemas import ExtensionMetric, ExtensionPanel, ExtensionsResponse
from online.service import Service

Provider = Callable[[Service], Awaitable[list[ExtensionMetric] | None]]


@dataclass(frozen=True)
class OptionalPanel:
    """A panel the page always shows, and what it says while nothing provides it."""

    id: str
    title: str
    absent: str


OPTIONAL_PANELS = (
    OptionalPanel(
        "score_tables",
        "Score tables",
        "no score table is served: table version vs snapshot version and age show here",
    ),
    OptionalPanel(
        "items_online",
        "Items added online",
        "this service featurizes no new items (PUT /items on a deep snapshot shows here)",
    ),
    OptionalPanel(
        "featurization",
        "Featurization batching",
        "no online featurization: batch sizes and latency show here",
    ),
)


class Extensions:
    """The providers registered for the optional panels of one app."""

    def __init__(self) -> None:
        """No provider yet: every optional panel is "not available"."""
        self._providers: dict[str, Provider] = {}

    def register(self, panel_id: str, provider: Provider) -> None:
        """Provide the numbers of the optional panel `panel_id`."""
        known = {panel.id for panel in OPTIONAL_PANELS}
        if panel_id not in known:
            raise KeyError(f"no optional panel {panel_id!r}; known: {sorted(known)}")
        self._providers[panel_id] = provider

    async def _panel(self, service: Service, panel: OptionalPanel) -> ExtensionPanel:
        provider = self._providers.get(panel.id)
        metrics, reason = None, panel.absent
        if provider is not None:
            try:
                metrics = await provider(service)
            except Exception as error:  # a broken provider must not break the page
                reason = f"{type(error).__name__}: {error}"
        return ExtensionPanel(
            id=panel.id,
            title=panel.title,
            available=metrics is not None,
            reason=None if metrics is not None else reason,
            metrics=metrics or [],
        )

    async def report(self, service: Service) -> ExtensionsResponse:
        """Every optional panel, in the page's order."""
        return ExtensionsResponse(
            panels=[await self._panel(service, panel) for panel in OPTIONAL_PANELS]
        )
