"""The FastAPI application: DPG's own routes (``dpg.api.routes``), the Binance dialect
(``dpg.api.binance``), the web exchange, and the limits on every request (rate, size, NUL).
``create_app(runtime)`` serves a ``dpg.api.runtime.Runtime``."""

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dpg.api import binance
from dpg.api.errors import ApiError, CatchAll, api_error_handler, body, send_json, validation_error_handler
from dpg.api.ratelimit import TokenBuckets
from dpg.api.routes import (
    account,
    console,
    escape,
    exit_address,
    futures,
    governance,
    operator,
    orders,
    proof,
    public,
    wallet,
    ws,
)
from dpg.api.runtime import Runtime
from dpg.api.web import mount_web, registry_origins
from dpg.identity import AuthError

log = logging.getLogger("dpg.api")

MAX_BODY = 64 * 1024


# ---------------------------------------------------------------------- middleware


class Limits:
    """Per-address rate limit, request bodies above MAX_BODY bytes refused (by header, or while
    reading a chunked body), and NUL characters in the path or query refused (no text column can
    hold one). Plain ASGI: no task or stream per request."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "?")
        if wait:
            await send_json(send, 429, body("RATE_LIMITED", "too many requests from this address"),
                            {"Retry-After": str(max(1, round(wait + 0.5)))})
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
                await send_json(send, 413, body("BODY_TOO_LARGE", f"request bodies are limited to {MAX_BODY} bytes"))
                return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await send_json(send, 400, body("INVALID_REQUEST", "the path and query may not contain NUL characters"))
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > MAX_BODY:
                    raise ApiError(413, "BODY_TOO_LARGE", f"request bodies are limited to {MAX_BODY} bytes")
            return msg

        await self.app(scope, limited, send)


def create_app(rt: Runtime) -> FastAPI:
    """The app serving ``rt`` (in its state, where every route's ``dpg.api.deps.runtime`` finds it)."""
    app = FastAPI(title="DPG", version="0.1.0",
                  description="DPG exchange API. Amounts are decimal strings; never floats.")
    app.state.runtime = rt
    handlers: dict[type[Exception], orders.Handler] = {
        ApiError: api_error_handler, AuthError: auth_error_handler, psycopg.OperationalError: database_error_handler,
        PoolTimeout: database_error_handler}
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(binance.BinanceError, binance.binance_error_handler)
    # routes are matched in the order they were added, so the hottest come first: the order entry
    # routes (no other router has their paths)
    app.include_router(orders.router)
    app.include_router(binance.router(rt))  # the Binance dialect: /api/v3, its streams, /ws-api/v3
    mount_web(app, registry_origins(rt.history.pool))  # the web exchange; its proof page may read the registry
    app.add_middleware(orders.OrderEntry, handlers=handlers)  # inside Limits: every limit applies to it
    app.add_middleware(Limits, buckets=rt.ip_limits)
    app.add_middleware(CatchAll)  # outermost: an unexpected exception is answered as JSON
    app.include_router(wallet.router)
    app.include_router(exit_address.router)
    app.include_router(proof.router(rt))
    app.include_router(escape.router)
    for routes in (public, account, futures, operator, governance, console, ws):
        app.include_router(routes.router)
    app.include_router(governance.operator)
    return app


async def auth_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    return JSONResponse(body(exc.code, exc.reason), status_code=exc.status)


async def database_error_handler(_: Request, exc: Exception) -> JSONResponse:
    log.warning("event=database_unavailable error=%r", str(exc).strip()[:200])
    return JSONResponse(body("DATABASE_UNAVAILABLE", "the exchange's database is unreachable; try again shortly"),
                        status_code=503, headers={"Retry-After": "2"})
