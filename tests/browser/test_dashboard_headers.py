"""GET /, its assets and the standalone trace page: security headers, caching, no inline
script and no other host (plain HTTP, no browser)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.service.server import ROOT, Server

STATIC = ROOT / "service" / "static"
ASSETS = sorted(p.name for p in STATIC.iterdir() if p.is_file())


def script_src(csp: str) -> str:
    for directive in csp.split(";"):
        name, _, value = directive.strip().partition(" ")
        if name == "script-src":
            return value
    raise AssertionError(f"no script-src in {csp!r}")


def assert_secure(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert script_src(csp) == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_page_has_security_headers_and_an_etag(live: Server) -> None:
    first = live.get("/")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/html")
    assert '<meta name="viewport" content="width=device-width' in first.text
    assert_secure(first)
    etag = first.headers["etag"]
    again = live.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert_secure(again)
    head = httpx.head(live.url + "/")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    other = live.get("/", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == first.content


@pytest.mark.parametrize("name", ASSETS)
def test_every_asset_is_cacheable_and_typed(live: Server, name: str) -> None:
    response = live.get(f"/static/{name}")
    assert response.status_code == 200
    assert_secure(response)
    expected = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
    kind = expected.get(Path(name).suffix, "image/svg+xml")
    assert response.headers["content-type"].startswith(kind)
    assert response.content == (STATIC / name).read_bytes()
    cached = live.get(f"/static/{name}", headers={"If-None-Match": response.headers["etag"]})
    assert cached.status_code == 304


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/..%2Fapp.py", "/static/.hidden.js"])
def test_unknown_assets_are_404(live: Server, path: str) -> None:
    assert live.get(path).status_code == 404


def test_no_inline_script_and_no_other_host_in_the_assets() -> None:
    for name in ASSETS:
        source = (STATIC / name).read_text()
        for url in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>)]*", source):
            assert url.startswith("http://www.w3.org/2000/svg"), (name, url)
        if name.endswith(".html"):
            for tag in re.findall(r"<script\b[^>]*>", source):
                assert 'src="/static/' in tag, (name, tag)
            assert not re.search(r"\son\w+=", source), name  # no inline event handler
            assert "style=" not in source, name


def test_standalone_trace_page(live: Server) -> None:
    response = live.get("/backprop?format=html&weights=lecture&x=5&x=3&label=1")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_secure(response)
    assert '<script type="module" src="/static/trace.js">' in response.text
    named = live.get("/backprop?format=html&sepal_length=5.0&sepal_width=3.4&label=setosa")
    assert named.status_code == 200


def test_standalone_trace_page_refuses_a_bad_query(live: Server) -> None:
    missing = live.get("/backprop?format=html&weights=lecture&label=1")
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "x"]
    wrong = live.get("/backprop?format=html&sepal_length=5.0&label=setosa")
    assert wrong.status_code == 422
    assert "sepal_width" in str(wrong.json()["detail"])
