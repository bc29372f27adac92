"""The dashboard: ``GET /`` and its static assets, served by the app itself.

Everything the page needs ships in ``service/static`` (no CDN, no build step), so it
works with no network. Every answer carries a Content-Security-Policy with no inline
script, ``nosniff`` and a Referrer-Policy; each asset has a content-hash ETag, so a
browser revalidates with ``If-None-Match`` and gets a 304 while the file is unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ServiceError

router = APIRouter(tags=["dashboard"])

# Scripts and styles only from this origin, no inline script, no plugin, no framing.
# The heat map is drawn on a canvas and shown as a data: image, hence img-src data:.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


class AssetNotFound(ServiceError):
    status_code = 404


@dataclass(frozen=True)
class Asset:
    """One static file, read once: its bytes, media type and strong ETag."""

    body: bytes
    media_type: str
    etag: str


@cache
def asset(name: str) -> Asset:
    """The packaged file ``service/static/<name>``; 404 for anything else."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in _TYPES:
        raise AssetNotFound(f"no static asset {name!r}")
    path = resources.files("service").joinpath("static", name)
    if not path.is_file():
        raise AssetNotFound(f"no static asset {name!r}")
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, _TYPES[suffix], etag)


def asset_response(request: Request, name: str) -> Response:
    """The asset with the security headers, or a 304 when the client's copy is current."""
    found = asset(name)
    headers = {**SECURITY_HEADERS, "ETag": found.etag, "Cache-Control": "no-cache"}
    sent = request.headers.get("if-none-match", "")
    if found.etag in {tag.strip().removeprefix("W/") for tag in sent.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


@router.get(
    "/",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
async def dashboard(request: Request) -> Response:
    """The dashboard page: model card, live predict, decision surface, training,
    the backprop trace drawn like the lecture's slides, single-sample descent and
    the activation functions."""
    return asset_response(request, "index.html")


@router.get(
    "/static/{name}",
    response_class=Response,
    responses={200: {"content": {"text/javascript": {}, "text/css": {}}}, 404: {}},
)
async def static_asset(request: Request, name: str) -> Response:
    """One of the dashboard's scripts or style sheets (ETag; 304 on If-None-Match)."""
    return asset_response(request, name)


# HEAD answers like GET (uvicorn sends no body); not a separate operation in OpenAPI.
router.add_api_route("/", dashboard, methods=["HEAD"], include_in_schema=False)
router.add_api_route("/static/{name}", static_asset, methods=["HEAD"], include_in_schema=False)


def page(name: str) -> Response:
    """A packaged HTML page answered from another route (e.g. the standalone trace)."""
    found = asset(name)
    return Response(found.body, media_type=found.media_type, headers=SECURITY_HEADERS)
