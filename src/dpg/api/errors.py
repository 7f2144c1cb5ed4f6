"""API errors: one JSON shape for every rejection, ``{"code": ..., "reason": ...}``, and the one
place where domain rejection codes become HTTP statuses. An unexpected exception is answered in
the same shape (500 INTERNAL) and logged, never as plain text."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dpg.core.errors import Reject

log = logging.getLogger("dpg.api")

# Engine rejection -> HTTP status. Anything not listed is a 400.
STATUS: dict[str, int] = {
    Reject.UNKNOWN_MARKET: 404,
    Reject.UNKNOWN_ASSET: 404,
    Reject.UNKNOWN_ACCOUNT: 404,
    Reject.ORDER_NOT_FOUND: 404,
    Reject.DUPLICATE_CLIENT_ORDER_ID: 409,
    Reject.DUPLICATE_REFERENCE: 409,
    Reject.INSUFFICIENT_FUNDS: 422,
    Reject.INSUFFICIENT_MARGIN: 422,
    Reject.UNAVAILABLE: 503,
    # the market's state, not the request, refuses it (reduce-only orders are taken meanwhile, so the
    # service is not unavailable: no 5xx for clients to retry blindly or monitors to page on)
    Reject.INDEX_STALE: 409,
    Reject.MARKET_HALTED: 409,
    Reject.GOVERNED: 409,  # governance decides the parameter: the operator's call is refused
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.status = status
        self.code = code
        self.reason = reason
        self.headers = headers


def rejection(code: str, reason: str) -> ApiError:
    return ApiError(STATUS.get(code, 400), code, reason)


def body(code: str, reason: str) -> dict[str, str]:
    return {"code": code, "reason": reason}


async def api_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(body(exc.code, exc.reason), status_code=exc.status, headers=exc.headers)


async def validation_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return JSONResponse(body("INVALID_REQUEST", "; ".join(parts) or "invalid request"), status_code=422)


class CatchAll:
    """The outermost handler of HTTP requests: an exception that nothing else answered is logged
    (one line with the request, then its traceback) and answered JSON 500 ``INTERNAL``, unless the
    answer had already begun (then the connection is closed by the server)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            log.error("event=internal_error method=%s path=%s error=%s", scope.get("method"), scope.get("path"),
                      type(exc).__name__, exc_info=exc)
            if started:
                raise
            await send_json(send, 500, body("INTERNAL", "an unexpected error; it was logged, please retry later"))


async def send_json(send: Send, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
    """A whole JSON answer at the ASGI level (for middleware, which has no Response machinery)."""
    raw = json.dumps(obj).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})
