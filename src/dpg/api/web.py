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
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from dpg.api.errors import ApiError

WEB = Path(__file__).resolve().parents[1] / "web"

# path prefixes answered with the page shell (the router in the page picks the page)
PAGES = ("/trade", "/futures", "/account", "/wallet", "/proof", "/governance", "/verify-email", "/reset-password",
         "/console")

# top-level folders of dpg.web served under /static/, and the types served
FOLDERS = ("app", "vendor", "por", "img")
TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
         ".json": "application/json", ".txt": "text/plain; charset=utf-8", ".wasm": "application/wasm"}

# app modules change with DPG: revalidate every time (ETag, 304); vendored libraries are pinned
# by package-lock.json and may be kept for a day
CACHE = {"vendor": "public, max-age=86400", "default": "no-cache"}

SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _csp(import_map_hash: str, connect: Sequence[str] = ()) -> str:
    sources = " ".join(["'self'", *connect])
    return ("default-src 'self'; "
            f"script-src 'self' 'sha256-{import_map_hash}'; "
            f"style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src {sources}; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


def origin(url: str) -> str | None:
    """The origin (scheme://host[:port]) of an http(s) URL, for a CSP source; None for anything else
    (no path, query or credentials of the URL ever reach the header)."""
    try:
        u = urlsplit(url.strip())
        port = u.port
    except ValueError:
        return None
    host = u.hostname or ""
    if u.scheme not in ("http", "https") or not re.fullmatch(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+", host):
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{u.scheme}://{host}" + (f":{port}" if port is not None else "")


def registry_origins(pool: Any, ttl: float = 10.0) -> Callable[[], Awaitable[list[str]]]:
    """The origins the proof page may send JSON-RPC to: the public RPC URL recorded with the
    registry (``por_registry``) when there is one; else, for roots published by ``dpg por publish``,
    the RPC URLs of the custody chains (``chains``) the roots were published on. A found answer is
    kept ``ttl`` seconds; none found is asked again on the next page (publishing may start any time)."""
    cached: tuple[float, list[str]] = (0.0, [])

    async def origins() -> list[str]:
        nonlocal cached
        if cached[1] and time.monotonic() - cached[0] < ttl:
            return cached[1]
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT to_regclass('por_registry') IS NOT NULL")
            row = await cur.fetchone()
            urls: list[str] | None = None
            if row and row[0]:
                cur = await conn.execute("SELECT rpc_url FROM por_registry")
                found = await cur.fetchall()
                if found:
                    urls = [str(found[0][0] or "")]
            if urls is None:
                cur = await conn.execute("SELECT rpc_url FROM chains WHERE chain_id IN"
                                         " (SELECT DISTINCT chain_id FROM por_publications) ORDER BY name")
                urls = [str(r[0]) for r in await cur.fetchall()]
        out = sorted({o for o in map(origin, urls) if o})
        cached = (time.monotonic(), out)
        return out

    return origins


@lru_cache(maxsize=1)
def _shell(mtime_ns: int) -> tuple[bytes, str]:
    """The page shell and the hash of its one inline script (the import map), which its content
    security policy allows."""
    raw = (WEB / "index.html").read_bytes()
    found = re.search(rb'<script type="importmap">(.*?)</script>', raw, re.S)
    digest = base64.b64encode(hashlib.sha256(found.group(1) if found else b"").digest()).decode()
    return raw, digest


def shell(connect: Sequence[str] = ()) -> Response:
    """The page shell; ``connect``: origins besides the exchange's own that pages may fetch from
    (the proof-of-reserves registry chain's JSON-RPC)."""
    raw, digest = _shell((WEB / "index.html").stat().st_mtime_ns)
    return HTMLResponse(raw, headers={"Cache-Control": "no-cache", "Content-Security-Policy": _csp(digest, connect),
                                      **SECURITY})


def static_file(path: str, request: Request) -> Response:
    folder, _, _ = path.partition("/")
    try:  # a path the file system cannot take (a NUL byte, too long) is just not there
        target = (WEB / path).resolve()
        found = (folder in FOLDERS and target.is_relative_to(WEB / folder) and target.suffix in TYPES
                 and target.is_file())
    except (ValueError, OSError):
        found = False
    if not found:
        raise ApiError(404, "NOT_FOUND", "no such file")
    st = target.stat()
    etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    headers = {"ETag": etag, "Cache-Control": CACHE.get(folder, CACHE["default"]), **SECURITY}
    if etag in (request.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(target, media_type=TYPES[target.suffix], headers=headers)


def mount_web(app: FastAPI, connect: Callable[[], Awaitable[list[str]]] | None = None) -> None:
    """Serve the web exchange on ``app``: ``/`` (the home page, or the trade page for a user who is
    logged in), the other page paths, ``/static/``.
    ``connect`` gives the extra origins of the CSP's connect-src (see ``registry_origins``)."""

    async def page() -> Response:
        return shell(await connect() if connect is not None else ())

    async def static(path: str, request: Request) -> Response:
        return static_file(path, request)

    get_head = ["GET", "HEAD"]
    app.add_api_route("/", page, methods=get_head, include_in_schema=False)
    for prefix in PAGES:
        app.add_api_route(prefix, page, methods=get_head, include_in_schema=False)
        app.add_api_route(prefix + "/{rest:path}", page, methods=get_head, include_in_schema=False)
    app.add_api_route("/static/{path:path}", static, methods=get_head, include_in_schema=False)
