"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), with every asset served by the app.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (and ReDoc a web font), so
they stay blank without a network. The ``fastapi-offline`` package ships those
bundles; this module serves them under ``/docs-assets`` and writes both pages itself,
with no inline script (Swagger UI is started by a small same-origin script), so a
strict Content-Security-Policy holds on them too.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.responses import Response as StarletteResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

ASSETS_PATH = "/docs-assets"

# Swagger UI and ReDoc set inline styles, ReDoc renders in a blob: web worker.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# Reads its settings from the page's data- attributes; no validator (it would call out).
SWAGGER_INIT = """\
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    showExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
})();
"""

# ReDoc's sidebar draws "API docs by Redocly" with a logo from its CDN: the one request
# of either bundle to another host. It is served with that URL swapped for an inline,
# empty image, so an offline page asks for nothing and logs no CSP error.
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"

router = APIRouter(include_in_schema=False)


def _bundle_dir() -> Path:
    """Where fastapi-offline keeps Swagger UI's and ReDoc's files."""
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


@cache
def _version() -> str:
    """A short hash of the bundles, so a new release gets new asset URLs."""
    digest = hashlib.sha256()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        digest.update((_bundle_dir() / name).read_bytes())
    digest.update(SWAGGER_INIT.encode())
    return digest.hexdigest()[:12]


def _asset(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}?v={_version()}"


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{head}
</head>
<body>
{body}
</body>
</html>
"""
    return HTMLResponse(html, headers=HEADERS)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on this service's OpenAPI schema."""
    openapi = f"{request.scope.get('root_path', '')}{request.app.openapi_url}"
    return _page(
        f"{request.app.title} - Swagger UI",
        f'<link rel="icon" type="image/png" href="{_asset(request, "favicon.png")}">\n'
        f'<link rel="stylesheet" href="{_asset(request, "swagger-ui.css")}">',
        f'<div id="swagger-ui" data-openapi-url="{openapi}"></div>\n'
        f'<script src="{_asset(request, "swagger-ui-bundle.js")}"></script>\n'
        f'<script src="{_asset(request, "swagger-init.js")}"></script>',
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc on this service's OpenAPI schema."""
    openapi = f"{request.scope.get('root_path', '')}{request.app.openapi_url}"
    return _page(
        f"{request.app.title} - ReDoc",
        f'<link rel="icon" type="image/png" href="{_asset(request, "favicon.png")}">',
        f'<redoc spec-url="{openapi}"></redoc>\n'
        f'<script src="{_asset(request, "redoc.standalone.js")}"></script>',
    )


@cache
def _redoc_bundle() -> bytes:
    return (_bundle_dir() / "redoc.standalone.js").read_bytes().replace(REDOC_CDN_LOGO, EMPTY_IMAGE)


@router.get(f"{ASSETS_PATH}/redoc.standalone.js")
async def redoc_bundle() -> Response:
    return Response(
        _redoc_bundle(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get(f"{ASSETS_PATH}/swagger-init.js")
async def swagger_init() -> Response:
    return Response(
        SWAGGER_INIT,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


class _Bundles(StaticFiles):
    """The vendored bundles, with nosniff and a long cache (their URLs are versioned)."""

    async def get_response(self, path: str, scope: Scope) -> StarletteResponse:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def install_docs(app: FastAPI) -> None:
    """Serve the offline pages; ``app`` must be built with ``docs_url=redoc_url=None``."""
    app.include_router(router)
    app.mount(ASSETS_PATH, _Bundles(directory=_bundle_dir()), name="docs-assets")
