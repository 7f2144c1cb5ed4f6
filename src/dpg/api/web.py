"""The web exchange served by the API process: the page shell for every page path, and the static
files under ``/static/`` (``app/`` modules, ``vendor/`` libraries, and other page folders) with
their content types, cache headers and a content security policy.

The files live in the ``dpg.web`` package (``src/dpg/web``); no build step: the shell page holds
an import map and loads ES modules. Pages are routed in the browser (``app/router.js``); the server
answers the shell for each path prefix in ``PAGES``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from dpg.api.errors import ApiError

WEB = Path(__file__).resolve().parents[1] / "web"

# path prefixes answered with the page shell (the router in the page picks the page)
PAGES = ("/trade", "/account", "/wallet", "/proof")

# top-level folders of dpg.web served under /static/, and the types served
FOLDERS = ("app", "vendor", "por", "img")
TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
         ".json": "application/json", ".txt": "text/plain; charset=utf-8", ".wasm": "application/wasm"}

# app modules change with DPG: revalidate every time (ETag, 304); vendored libraries are pinned
# by package-lock.json and may be kept for a day
CACHE = {"vendor": "public, max-age=86400", "default": "no-cache"}

SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _csp(import_map_hash: str) -> str:
    return ("default-src 'self'; "
            f"script-src 'self' 'sha256-{import_map_hash}'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


@lru_cache(maxsize=1)
def _shell(mtime_ns: int) -> tuple[bytes, str]:
    """The page shell and its content security policy, which allows its one inline script (the
    import map) by hash."""
    raw = (WEB / "index.html").read_bytes()
    found = re.search(rb'<script type="importmap">(.*?)</script>', raw, re.S)
    digest = base64.b64encode(hashlib.sha256(found.group(1) if found else b"").digest()).decode()
    return raw, _csp(digest)


def shell() -> Response:
    raw, csp = _shell((WEB / "index.html").stat().st_mtime_ns)
    return HTMLResponse(raw, headers={"Cache-Control": "no-cache", "Content-Security-Policy": csp, **SECURITY})


def static_file(path: str, request: Request) -> Response:
    folder, _, _ = path.partition("/")
    target = (WEB / path).resolve()
    if (folder not in FOLDERS or not target.is_relative_to(WEB / folder) or target.suffix not in TYPES
            or not target.is_file()):
        raise ApiError(404, "NOT_FOUND", "no such file")
    st = target.stat()
    etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    headers = {"ETag": etag, "Cache-Control": CACHE.get(folder, CACHE["default"]), **SECURITY}
    if etag in (request.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(target, media_type=TYPES[target.suffix], headers=headers)


def mount_web(app: FastAPI) -> None:
    """Serve the web exchange on ``app``: ``/`` (the trade page), the other page paths, ``/static/``."""

    async def page() -> Response:
        return shell()

    async def static(path: str, request: Request) -> Response:
        return static_file(path, request)

    get_head = ["GET", "HEAD"]
    app.add_api_route("/", page, methods=get_head, include_in_schema=False)
    for prefix in PAGES:
        app.add_api_route(prefix, page, methods=get_head, include_in_schema=False)
        app.add_api_route(prefix + "/{rest:path}", page, methods=get_head, include_in_schema=False)
    app.add_api_route("/static/{path:path}", static, methods=get_head, include_in_schema=False)
