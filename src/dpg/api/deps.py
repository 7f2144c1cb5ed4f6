"""The routes' dependencies: the runtime the app serves, the client's address, and who calls: a
session or a signed API-key request (``Auth``), a logged-in session only (``Session``), the
operator's token (``admin``), an operator's session with 2FA on (``Operator``: the console).

Private REST calls authenticate either with a session (``Authorization: Bearer <token>``) or with
an API key and a signature: headers ``X-DPG-APIKEY``, ``X-DPG-TIMESTAMP`` (ms), optionally
``X-DPG-RECV-WINDOW`` (ms, default 5000) and ``X-DPG-SIGNATURE`` = hex HMAC-SHA256(secret,
"<timestamp>\\n<METHOD>\\n<path>[?query]\\n<body>"); when the window header is sent, it is signed too:
"<timestamp>\\n<recv_window>\\n<METHOD>\\n<path>[?query]\\n<body>".

(No ``from __future__ import annotations``: FastAPI reads these annotations as objects.)"""

import hmac
from dataclasses import dataclass
from typing import Annotated, Literal, cast

from fastapi import Depends, Header, Query, Request
from starlette.requests import HTTPConnection

from dpg.api import signing
from dpg.api.errors import ApiError
from dpg.api.runtime import Runtime


def runtime(conn: HTTPConnection) -> Runtime:
    """The runtime of the app serving this request or socket (``create_app`` puts it in its state)."""
    return cast(Runtime, conn.app.state.runtime)


async def _runtime(conn: HTTPConnection) -> Runtime:
    """``runtime`` as a dependency: a coroutine, so FastAPI calls it in place (a plain function
    dependency would be run in its worker thread pool, a thread hand-off on every request)."""
    return cast(Runtime, conn.app.state.runtime)


Rt = Annotated[Runtime, Depends(_runtime)]


def client_ip(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "0.0.0.0"  # noqa: S104 (a value, not a bind)


def signed_payload(ts: str, recv_window: str | None, method: str, path: str) -> bytes:
    """What a native API-key signature covers, before the body: ``"<ts>\\n<METHOD>\\n<path>\\n"``,
    or with a receive window ``"<ts>\\n<recv_window>\\n<METHOD>\\n<path>\\n"`` (so that a relay
    cannot widen the window of a request it holds: a changed window breaks the signature)."""
    head = ts if recv_window is None else f"{ts}\n{recv_window}"
    return f"{head}\n{method}\n{path}\n".encode()


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    via: Literal["session", "key"]
    key: str = ""


def _permission(request: Request) -> str:
    """What a signed request needs of its key: read for GET, trade otherwise, withdraw for
    transfers and for changes of the wallet."""
    path = request.url.path
    if path.startswith("/api/v1/transfers") or (
            request.method != "GET" and path.startswith(("/api/v1/withdrawals", "/api/v1/wallet"))):
        return "withdraw"
    return "read" if request.method == "GET" else "trade"


async def _signed_user(rt: Runtime, request: Request, key: str) -> int:
    ts = request.headers.get("x-dpg-timestamp", "")
    window = request.headers.get("x-dpg-recv-window")  # signed when sent (see signed_payload)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        return await signing.verify(rt.accounts, key, request.headers.get("x-dpg-signature", ""),
                                    signed_payload(ts, window, request.method, path) + await request.body(),
                                    ts, window, client_ip(request), _permission(request))
    except signing.MalformedSignature:
        raise ApiError(400, "INVALID_TIMESTAMP",
                       "X-DPG-TIMESTAMP and X-DPG-RECV-WINDOW must be integers (ms)") from None


async def principal(request: Request) -> Principal:
    """The caller of a private route, within its key's (or session user's) rate limit."""
    rt = runtime(request)
    authz = request.headers.get("authorization", "")
    if authz.lower().startswith("bearer "):
        p = Principal(await rt.accounts.session_user(authz[7:].strip()), "session")
    else:
        key = request.headers.get("x-dpg-apikey")
        if not key:
            raise ApiError(401, "AUTH_REQUIRED", "send a session token or a signed API-key request")
        p = Principal(await _signed_user(rt, request, key), "key", key)
    wait = rt.key_limits.take(p.key or f"user:{p.user_id}")
    if wait:
        raise ApiError(429, "RATE_LIMITED", "too many requests for this key",
                       headers={"Retry-After": str(max(1, round(wait + 0.5)))})
    return p


async def session_user(request: Request) -> int:
    """The user of a logged-in session (account settings take no API key)."""
    authz = request.headers.get("authorization", "")
    if not authz.lower().startswith("bearer "):
        raise ApiError(401, "SESSION_REQUIRED", "this call needs a logged-in session (Authorization: Bearer)")
    return await runtime(request).accounts.session_user(authz[7:].strip())


async def admin(request: Request, x_dpg_admin_token: Annotated[str | None, Header()] = None) -> None:
    """Operator calls: the X-DPG-Admin-Token header must be the runtime's admin token."""
    token = runtime(request).admin_token
    if not token or not x_dpg_admin_token or not hmac.compare_digest(
            x_dpg_admin_token.encode(), token.encode()):  # bytes: any header text compares
        raise ApiError(403, "ADMIN_ONLY", "operator calls need X-DPG-Admin-Token")


async def operator_user(request: Request) -> int:
    """The console's caller: a logged-in session of a user with the operator role and 2FA on
    (read at every call: a role or 2FA taken away closes the console at once)."""
    uid = await session_user(request)
    async with runtime(request).accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT role, totp_enabled FROM users WHERE id = %s", (uid,))
        row = await cur.fetchone()
    if row is None or row[0] != "operator":
        raise ApiError(403, "OPERATOR_ONLY", "the console is for operators")
    if not row[1]:
        raise ApiError(403, "TWO_FACTOR_REQUIRED", "an operator must turn two-factor authentication on to use"
                                                   " the console")
    return uid


Auth = Annotated[Principal, Depends(principal)]
Session = Annotated[int, Depends(session_user)]
Operator = Annotated[int, Depends(operator_user)]

# query parameters several routes share
MarketQ = Annotated[str, Query(max_length=20, description="e.g. BTC/USDT, BTC-USDT or BTCUSDT")]
Limit = Annotated[int, Query(ge=1, le=1000)]
StartQ = Annotated[int | None, Query(ge=0, le=2**52, description="from this time (ms since epoch)")]
EndQ = Annotated[int | None, Query(ge=0, le=2**52, description="before this time (ms since epoch)")]
