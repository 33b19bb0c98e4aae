"""The panels of the page, in order: the page asks `/dashboard/data/panels` and draws each
one with the render function of the same id in `static/dashboard.js`."""

from __future__ import annotations

from online.dashboard.schemas import PanelInfo

PANELS = (
    PanelInfo(id="overview", title="Models and retrains", data_path="/dashboard/data/overview",
              refresh_s=10.0),
    PanelInfo(id="traffic", title="Live traffic", data_path="/dashboard/data/traffic",
              refresh_s=2.0),
    PanelInfo(id="learning", title="Learning", data_path="/dashboard/data/learning",
              refresh_s=5.0),
    PanelInfo(id="ope", title="Off-policy estimates", data_path="/dashboard/data/ope",
              refresh_s=60.0),
    PanelInfo(id="extensions", title="More", data_path="/dashboard/data/extensions",
              refresh_s=10.0),
)  # fmt: skip
