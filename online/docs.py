"""`GET /docs`: Swagger UI from files in the installed package, so it works offline.

FastAPI's default page loads Swagger UI's script and style sheet from a CDN, so behind a
firewall or offline it stays blank. The `swagger-ui-bundle-v2` wheel ships the same files
(Swagger UI 5, which renders the OpenAPI 3.1 documents FastAPI writes); they are served from
`/docs/static/`. ReDoc (`/redoc`) would need a CDN too and is not served.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

STATIC = "/docs/static"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs with its assets at /docs/static (the app has docs_url=None)."""
    app.mount(STATIC, StaticFiles(directory=swagger_ui_path), name="swagger-ui")
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} - API"

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, include_in_schema=False)
