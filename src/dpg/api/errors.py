"""API errors: one JSON shape for every rejection, ``{"code": ..., "reason": ...}``, and the one
place where domain rejection codes become HTTP statuses."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dpg.core.errors import Reject

# Engine rejection -> HTTP status. Anything not listed is a 400.
STATUS: dict[str, int] = {
    Reject.UNKNOWN_MARKET: 404,
    Reject.UNKNOWN_ASSET: 404,
    Reject.UNKNOWN_ACCOUNT: 404,
    Reject.ORDER_NOT_FOUND: 404,
    Reject.DUPLICATE_CLIENT_ORDER_ID: 409,
    Reject.DUPLICATE_REFERENCE: 409,
    Reject.INSUFFICIENT_FUNDS: 422,
    Reject.UNAVAILABLE: 503,
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
