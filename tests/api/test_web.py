"""Serving the web exchange: page paths answer the shell, /static/ serves only the page folders
with their content types and cache headers, revalidation gives 304, and the content security
policy allows exactly the shell's import map."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dpg.api.errors import ApiError, api_error_handler
from dpg.api.web import WEB, mount_web, origin


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.add_exception_handler(ApiError, api_error_handler)
    mount_web(app)
    return TestClient(app)


@pytest.mark.parametrize("path", ["/", "/trade/BTC-USDT", "/futures/BTC-PERP", "/account", "/account/login", "/wallet",
                                  "/proof/x", "/console"])
def test_pages_answer_the_shell(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert '<script type="importmap">' in r.text
    assert client.head(path).status_code == 200


def test_csp_allows_the_import_map_by_hash(client: TestClient) -> None:
    r = client.get("/")
    found = re.search(r'<script type="importmap">(.*?)</script>', r.text, re.S)
    assert found
    digest = base64.b64encode(hashlib.sha256(found.group(1).encode()).digest()).decode()
    csp = r.headers["content-security-policy"]
    assert f"'sha256-{digest}'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_static_types_cache_and_revalidation(client: TestClient) -> None:
    r = client.get("/static/app/main.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    again = client.get("/static/app/main.js", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    assert client.get("/static/app/style.css").headers["content-type"] == "text/css; charset=utf-8"
    assert (WEB / "vendor" / "qrcode.mjs").exists(), "run the set-up: make src/dpg/web/vendor/.installed"
    v = client.get("/static/vendor/qrcode.mjs")
    assert v.status_code == 200 and "max-age=86400" in v.headers["cache-control"]


@pytest.mark.parametrize("path", ["/static/package.json", "/static/index.html", "/static/__init__.py",
                                  "/static/node_modules/qrcode-generator/package.json", "/static/app/../__init__.py",
                                  "/static/app/%2e%2e/__init__.py", "/static/app/nope.js", "/static/app",
                                  "/static/app/%00.js", "/static/app/" + "a" * 300 + ".js"])
def test_static_serves_nothing_else(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["code"] == "NOT_FOUND"


@pytest.mark.parametrize(("url", "want"), [
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("https://user:secret@rpc.example.org/v3/KEY?x=1", "https://rpc.example.org"),
    ("http://[::1]:8545/", "http://[::1]:8545"),
    ("ws://127.0.0.1:8545", None),
    ("javascript:alert(1)", None),
    ("http://evil.example; script-src *", None),
    ("", None),
])
def test_origin_of_an_rpc_url_keeps_only_scheme_host_and_port(url: str, want: str | None) -> None:
    assert origin(url) == want


def test_csp_connect_src_adds_the_registry_chains_origin() -> None:
    async def registry_rpc() -> list[str]:
        return ["http://127.0.0.1:8545"]

    app = FastAPI()
    mount_web(app, registry_rpc)
    csp = TestClient(app).get("/proof").headers["content-security-policy"]
    assert "connect-src 'self' http://127.0.0.1:8545;" in csp
    plain = FastAPI()
    mount_web(plain)
    assert "connect-src 'self';" in TestClient(plain).get("/").headers["content-security-policy"]
