"""/docs and /redoc work offline: every asset they load comes from the server itself."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.routing import APIRoute

from service.app import create_app
from service.settings import Settings

from .server import Server

_REFERENCE = re.compile(r"""(?:src|href|spec-url|data-openapi-url)\s*=\s*["']([^"']+)["']""")


def _references(html: str) -> list[str]:
    return _REFERENCE.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_page_loads_only_same_origin_assets_and_each_answers(server: Server, page: str) -> None:
    answer = server.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    csp = answer.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert answer.headers["x-content-type-options"] == "nosniff"
    html = answer.text
    assert "<script>" not in html, "no inline script"
    assert not re.search(r"https?://|//[a-z]", html.replace("http-equiv", "")), "no other host"
    refs = _references(html)
    assert "/openapi.json" in refs
    assets = [ref for ref in refs if ref != "/openapi.json"]
    assert assets and all(ref.startswith("/") and not ref.startswith("//") for ref in refs)
    for ref in assets:
        asset = server.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 1000 or "swagger-init.js" in ref, ref
        assert asset.headers["x-content-type-options"] == "nosniff"
    kinds = {urlsplit(ref).path.rsplit(".", 1)[-1] for ref in assets}
    assert kinds >= ({"js", "css", "png"} if page == "/docs" else {"js", "png"})


def test_the_swagger_start_script_asks_no_validator(server: Server) -> None:
    refs = _references(server.get("/docs").text)
    init = next(ref for ref in refs if "swagger-init.js" in ref)
    script = server.get(init).text
    assert "validatorUrl: null" in script and "http" not in script


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_no_script_the_pages_load_names_another_host_to_fetch(server: Server, page: str) -> None:
    for ref in _references(server.get(page).text):
        if ".js" in ref:
            assert "https://cdn." not in server.get(ref).text, ref


def test_the_bundles_are_cacheable_and_unknown_assets_are_404(server: Server) -> None:
    refs = _references(server.get("/redoc").text)
    bundle = next(ref for ref in refs if ref.endswith(".js") or ".js?" in ref)
    assert "max-age" in server.get(bundle).headers["cache-control"]
    assert server.get("/docs-assets/nope.js").status_code == 404


def test_every_route_is_in_the_openapi_schema(server: Server, tmp_path: Path) -> None:
    schema = server.get("/openapi.json").json()["paths"]
    app = create_app(Settings(model_dir=tmp_path, api_token="t"))  # routes only: no lifespan
    routes = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
        if method != "HEAD"
    }
    documented = {(path, method.upper()) for path, ops in schema.items() for method in ops}
    assert routes <= documented
    for path, method in [
        ("/model/decision-surface", "GET"),
        ("/train/{job_id}/events", "GET"),
        ("/backprop", "POST"),
        ("/predict", "POST"),
        ("/train", "POST"),
    ]:
        assert (path, method) in documented
    events = schema["/train/{job_id}/events"]["get"]["responses"]
    assert "text/event-stream" in events["200"]["content"] and "404" in events
    body = schema["/backprop"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    request = server.get("/openapi.json").json()["components"]["schemas"][
        body["$ref"].split("/")[-1]
    ]
    assert {"steps", "learning_rate", "weights"} <= set(request["properties"])
