"""The FastAPI application: public and private REST, the WebSocket, auth, rate and size limits.

``create_app(runtime)`` serves a ``dpg.api.runtime.Runtime``.

Private REST calls authenticate either with a session (``Authorization: Bearer <token>``) or with
an API key and a signature: headers ``X-DPG-APIKEY``, ``X-DPG-TIMESTAMP`` (ms), optionally
``X-DPG-RECV-WINDOW`` (ms, default 5000) and ``X-DPG-SIGNATURE`` = hex HMAC-SHA256(secret,
"<timestamp>\\n<METHOD>\\n<path>[?query]\\n<body>"); when the window header is sent, it is signed too:
"<timestamp>\\n<recv_window>\\n<METHOD>\\n<path>[?query]\\n<body>".
"""



import json
import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import psycopg
from fastapi import Depends, FastAPI, Header, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dpg.api import presentation as P
from dpg.api.auth import AuthError
from dpg.api.errors import ApiError, CatchAll, api_error_handler, body, send_json, validation_error_handler
from dpg.api.marketdata import INTERVALS
from dpg.api.ratelimit import TokenBuckets
from dpg.api.runtime import Runtime
from dpg.api.trading import AmendRequest, CreditRequest, OrderRequest, TransferRequest
from dpg.api.ws import PRIVATE, Client, Dialect, Grant
from dpg.core import events as E

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


def client_ip(request: Request | WebSocket) -> str:
    return request.client.host if request.client else "0.0.0.0"  # noqa: S104 (a value, not a bind)


def whole_number(text: str, digits: int) -> int | None:
    """A non-negative integer written with 1 to ``digits`` ASCII digits, else None (``str.isdigit``
    alone lets through "²", which ``int`` refuses)."""
    return int(text) if 0 < len(text) <= digits and text.isascii() and text.isdigit() else None


DEFAULT_RECV_WINDOW = 5000  # ms, when a signed request names none


def signed_payload(ts: str, recv_window: str | None, method: str, path: str) -> bytes:
    """What a native API-key signature covers, before the body: ``"<ts>\\n<METHOD>\\n<path>\\n"``,
    or with a receive window ``"<ts>\\n<recv_window>\\n<METHOD>\\n<path>\\n"`` (so that a relay
    cannot widen the window of a request it holds: a changed window breaks the signature)."""
    head = ts if recv_window is None else f"{ts}\n{recv_window}"
    return f"{head}\n{method}\n{path}\n".encode()


# ---------------------------------------------------------------------- auth


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    via: Literal["session", "key"]
    key: str = ""


class SignupRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=128)


class LoginRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=128)
    totp: str | None = Field(default=None, max_length=16)


class OpenAccountRequest(BaseModel):
    user_id: int = Field(gt=0, lt=2**62)


class TotpRequest(BaseModel):
    code: str = Field(max_length=16)


class TokenRequest(BaseModel):
    token: str = Field(max_length=64, description="the token of the mailed link (its ?token=...)")


class ForgotRequest(BaseModel):
    email: str = Field(max_length=254)


class ResetRequest(BaseModel):
    token: str = Field(max_length=64, description="the token of the mailed link (its ?token=...)")
    password: str = Field(max_length=128, description="the new password, 10 to 128 characters")


class ApiKeyRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    permissions: list[Literal["read", "trade", "withdraw"]] = Field(min_length=1, max_length=3)
    ip_allow: list[str] = Field(default_factory=list, max_length=32)
    totp: str | None = Field(default=None, max_length=16)


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="DPG", version="0.1.0",
                  description="DPG exchange API. Amounts are decimal strings; never floats.")
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)

    async def auth_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        return JSONResponse(body(exc.code, exc.reason), status_code=exc.status)

    app.add_exception_handler(AuthError, auth_error)

    async def database_error(_: Request, exc: Exception) -> JSONResponse:
        log.warning("event=database_unavailable error=%r", str(exc).strip()[:200])
        return JSONResponse(body("DATABASE_UNAVAILABLE", "the exchange's database is unreachable; try again shortly"),
                            status_code=503, headers={"Retry-After": "2"})

    app.add_exception_handler(psycopg.OperationalError, database_error)
    app.add_exception_handler(PoolTimeout, database_error)

    from dpg.api import binance  # the Binance dialect under /api/v3

    app.add_exception_handler(binance.BinanceError, binance.binance_error_handler)
    app.include_router(binance.router(rt))
    app.include_router(binance.streams(rt))
    from dpg.api.web import mount_web, registry_origins  # the web exchange: pages at /, files under /static/

    mount_web(app, registry_origins(rt.history.pool))  # the proof page may read the registry's chain

    app.add_middleware(Limits, buckets=rt.ip_limits)
    app.add_middleware(CatchAll)  # outermost: an unexpected exception is answered as JSON

    async def principal(request: Request) -> Principal:
        authz = request.headers.get("authorization", "")
        if authz.lower().startswith("bearer "):
            user = await rt.accounts.session_user(authz[7:].strip())
            p = Principal(user, "session")
        else:
            key = request.headers.get("x-dpg-apikey")
            if not key:
                raise ApiError(401, "AUTH_REQUIRED", "send a session token or a signed API-key request")
            ts = request.headers.get("x-dpg-timestamp", "")
            window = request.headers.get("x-dpg-recv-window")  # signed when sent (see signed_payload)
            sig = request.headers.get("x-dpg-signature", "")
            if whole_number(ts, 16) is None or (window is not None and whole_number(window, 6) is None):
                raise ApiError(400, "INVALID_TIMESTAMP", "X-DPG-TIMESTAMP and X-DPG-RECV-WINDOW must be integers (ms)")
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            payload = signed_payload(ts, window, request.method, path) + await request.body()
            need = "read" if request.method == "GET" else "trade"
            if request.url.path.startswith("/api/v1/transfers") or (
                    request.method != "GET" and request.url.path.startswith(("/api/v1/withdrawals", "/api/v1/wallet"))):
                need = "withdraw"
            user = await rt.accounts.verify_signature(key, sig, payload, int(ts), int(window or DEFAULT_RECV_WINDOW),
                                                      client_ip(request), need)
            p = Principal(user, "key", key)
        wait = rt.key_limits.take(p.key or f"user:{p.user_id}")
        if wait:
            raise ApiError(429, "RATE_LIMITED", "too many requests for this key",
                           headers={"Retry-After": str(max(1, round(wait + 0.5)))})
        return p

    async def session_only(request: Request) -> int:
        authz = request.headers.get("authorization", "")
        if not authz.lower().startswith("bearer "):
            raise ApiError(401, "SESSION_REQUIRED", "this call needs a logged-in session (Authorization: Bearer)")
        return await rt.accounts.session_user(authz[7:].strip())

    def admin(x_dpg_admin_token: Annotated[str | None, Header()] = None) -> None:
        import hmac

        if not rt.admin_token or not x_dpg_admin_token or not hmac.compare_digest(
                x_dpg_admin_token.encode(), rt.admin_token.encode()):  # bytes: any header text compares
            raise ApiError(403, "ADMIN_ONLY", "operator calls need X-DPG-Admin-Token")

    Auth = Annotated[Principal, Depends(principal)]
    from dpg.api import wallet  # deposits, the withdrawal allow-list, withdrawals

    app.include_router(wallet.router(rt, principal, admin))
    from dpg.api import por_routes  # proof of reserves: epochs, reports, a user's proofs, the /por page

    app.include_router(por_routes.router(rt, principal))
    Session = Annotated[int, Depends(session_only)]
    MarketQ = Annotated[str, Query(max_length=20, description="e.g. BTC/USDT, BTC-USDT or BTCUSDT")]
    Limit = Annotated[int, Query(ge=1, le=1000)]
    StartQ = Annotated[int | None, Query(ge=0, le=2**52, description="from this time (ms since epoch)")]
    EndQ = Annotated[int | None, Query(ge=0, le=2**52, description="before this time (ms since epoch)")]

    # ------------------------------------------------------------------ public

    @app.get("/api/v1/time", tags=["public"])
    async def server_time() -> dict[str, int]:
        return {"server_time": int(time.time() * 1000)}

    @app.get("/api/v1/health", tags=["public"], responses={503: {"description": "halted, with the reason"}})
    async def health() -> Response:
        """200 while the exchange takes commands; 503 with the reason while it does not (its
        database or, for an API process, the engine process is unreachable)."""
        ok, reason = rt.status()
        return _json({"ok": True, "seq": rt.views.seq} if ok else
                     {"ok": False, "seq": rt.views.seq, "code": "UNAVAILABLE", "reason": reason}, 200 if ok else 503)

    @app.get("/api/v1/demo", tags=["public"])
    async def demo() -> dict[str, Any]:
        """Whether this exchange is the demo (``dpg up --demo``) and, only then, the demo logins
        (the log-in page names them)."""
        from dpg.api.demo import public_info

        return public_info(rt.demo)

    @app.get("/api/v1/markets", tags=["public"])
    async def markets() -> list[dict[str, Any]]:
        return [P.market_json(m) for m in rt.markets]

    @app.get("/api/v1/assets", tags=["public"])
    async def assets() -> list[dict[str, Any]]:
        return [{"asset": a.symbol, "decimals": a.decimals} for a in rt.assets]

    @app.get("/api/v1/depth", tags=["public"])
    async def depth(market: MarketQ, limit: Limit = 100) -> dict[str, Any]:
        return rt.depth_json(rt.trading.market(market), limit)

    @app.get("/api/v1/trades", tags=["public"])
    async def trades(market: MarketQ, limit: Limit = 100) -> list[dict[str, Any]]:
        m = rt.trading.market(market)
        return [P.trade_json(m, t) for t in rt.md.trades(m.symbol, limit)]

    @app.get("/api/v1/ticker", tags=["public"])
    async def ticker(market: Annotated[str | None, Query(max_length=20)] = None) -> list[dict[str, Any]]:
        chosen = [rt.trading.market(market)] if market else rt.markets
        return [rt.ticker_json(m) for m in chosen]

    @app.get("/api/v1/candles", tags=["public"])
    async def candles(market: MarketQ, interval: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "1m",
                      limit: Limit = 500, start: StartQ = None, end: EndQ = None) -> list[dict[str, Any]]:
        m = rt.trading.market(market)
        rows = rt.md.candles(m.symbol, interval, limit,
                             start * 1_000_000 if start is not None else None,
                             end * 1_000_000 if end is not None else None)
        return [P.candle_json(m, c) for c in rows]

    # ------------------------------------------------------------------ accounts

    @app.post("/api/v1/auth/signup", tags=["account"], status_code=201)
    async def signup(req: SignupRequest) -> dict[str, int]:
        user = await rt.accounts.sign_up(req.email, req.password)
        await rt.open_account(user)  # if the engine cannot take it now: at the next login or start
        return {"user_id": user}

    @app.post("/api/v1/auth/login", tags=["account"])
    async def login(req: LoginRequest, request: Request) -> dict[str, Any]:
        token, expires = await rt.accounts.login(req.email, req.password, req.totp, client_ip(request))
        user = await rt.accounts.session_user(token)
        if not rt.views.has_account(user):  # its sign-up could not open it
            await rt.open_account(user)
        return {"token": token, "expires_at": int(expires * 1000), "user_id": user}

    @app.post("/api/v1/auth/logout", tags=["account"])
    async def logout(request: Request, _: Session) -> dict[str, bool]:
        await rt.accounts.logout(request.headers["authorization"][7:].strip())
        return {"ok": True}

    @app.post("/api/v1/auth/2fa/setup", tags=["account"])
    async def totp_setup(user: Session) -> dict[str, str]:
        secret, uri = await rt.accounts.totp_begin(user)
        return {"secret": secret, "otpauth_uri": uri}

    @app.post("/api/v1/auth/2fa/enable", tags=["account"])
    async def totp_enable(req: TotpRequest, user: Session) -> dict[str, list[str]]:
        return {"recovery_codes": await rt.accounts.totp_enable(user, req.code)}

    @app.get("/api/v1/auth/2fa", tags=["account"])
    async def totp_status(user: Session) -> dict[str, Any]:
        """Whether 2FA is on (then withdrawals and new allow-listed addresses need a code) and how
        many unused recovery codes are left."""
        return await rt.accounts.totp_status(user)

    @app.post("/api/v1/auth/2fa/disable", tags=["account"])
    async def totp_disable(req: TotpRequest, user: Session) -> dict[str, bool]:
        """Turn 2FA off with a current code from the app (not a recovery code); each code works once."""
        await rt.accounts.totp_disable(user, req.code)
        return {"enabled": False}

    @app.post("/api/v1/auth/2fa/recovery-codes", tags=["account"])
    async def totp_recovery_codes(req: TotpRequest, user: Session) -> dict[str, list[str]]:
        """New recovery codes, shown once, with a current code from the app; the old ones stop working."""
        return {"recovery_codes": await rt.accounts.new_recovery_codes(user, req.code)}

    @app.get("/api/v1/auth/email", tags=["account"])
    async def email_status(user: Session) -> dict[str, Any]:
        """The account's address and whether it is verified (until then: no withdrawals, no new
        withdrawal addresses)."""
        return await rt.accounts.email_status(user)

    @app.post("/api/v1/auth/verify-email", tags=["account"])
    async def verify_email(req: TokenRequest) -> dict[str, Any]:
        """Follow the link mailed at sign-up (valid 24 h, once): the address is verified."""
        return {"ok": True, "user_id": await rt.accounts.verify_email(req.token)}

    @app.post("/api/v1/auth/verify-email/resend", tags=["account"])
    async def resend_verification(user: Session) -> dict[str, bool]:
        await rt.accounts.resend_verification(user)
        return {"ok": True}

    @app.post("/api/v1/auth/password/forgot", tags=["account"], status_code=202)
    async def forgot_password(req: ForgotRequest, request: Request) -> dict[str, Any]:
        """Mail a link to set a new password (valid 1 h, once) if an account has this address; the
        answer is the same either way."""
        await rt.accounts.request_password_reset(req.email, client_ip(request))
        return {"ok": True, "message": "If an account has this address, a link to reset its password was mailed to it."}

    @app.post("/api/v1/auth/password/reset", tags=["account"])
    async def reset_password(req: ResetRequest) -> dict[str, bool]:
        """Set a new password with the mailed link's token; every session of the account ends."""
        await rt.accounts.reset_password(req.token, req.password)
        return {"ok": True}

    @app.post("/api/v1/api-keys", tags=["account"], status_code=201)
    async def create_key(req: ApiKeyRequest, user: Session) -> dict[str, Any]:
        key, secret = await rt.accounts.create_api_key(user, req.name, set(req.permissions), req.ip_allow, req.totp)
        return {"key": key, "secret": secret, "permissions": sorted(set(req.permissions)), "ip_allow": req.ip_allow}

    @app.get("/api/v1/api-keys", tags=["account"])
    async def list_keys(user: Session) -> list[dict[str, Any]]:
        rows = await rt.accounts.list_api_keys(user)
        return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows]

    @app.delete("/api/v1/api-keys/{key}", tags=["account"])
    async def revoke_key(key: Annotated[str, Field(max_length=64)], user: Session) -> dict[str, bool]:
        await rt.accounts.revoke_api_key(user, key)
        return {"ok": True}

    # ------------------------------------------------------------------ private

    @app.get("/api/v1/balances", tags=["private"])
    async def balances(p: Auth) -> list[dict[str, str]]:
        return P.balances_json(rt.assets, rt.views.balance(p.user_id))

    @app.post("/api/v1/orders", tags=["private"], status_code=201, response_model=dict[str, Any])
    async def place(req: OrderRequest, p: Auth) -> Response:
        return _json(await rt.trading.place(p.user_id, req), 201)

    @app.get("/api/v1/orders/open", tags=["private"])
    async def open_orders(p: Auth, market: Annotated[str | None, Query(max_length=20)] = None) -> list[dict[str, Any]]:
        mi = rt.trading.market(market).index if market else None
        return [rt.order_json(v) for v in rt.views.open_orders(p.user_id, mi)]

    @app.get("/api/v1/orders/history", tags=["private"])
    async def order_history(p: Auth, market: Annotated[str | None, Query(max_length=20)] = None,
                            start: StartQ = None, end: EndQ = None,
                            before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                            limit: Limit = 100) -> dict[str, Any]:
        sym = rt.trading.market(market).symbol if market else None
        return await rt.history.orders(p.user_id, sym, start, end, before_id, limit)

    @app.get("/api/v1/orders/by-client-id/{client_order_id}", tags=["private"])
    async def order_by_cid(client_order_id: str, p: Auth) -> dict[str, Any]:
        v = await rt.find_order(p.user_id, client_id=client_order_id)
        if v is None:
            raise ApiError(404, "ORDER_NOT_FOUND", "no order with this client order id")
        return rt.order_json(v)

    @app.get("/api/v1/orders/{order_id}", tags=["private"])
    async def order(order_id: Annotated[int, Field(ge=1, le=2**62)], p: Auth) -> dict[str, Any]:
        v = await rt.find_order(p.user_id, order_id)
        if v is None:
            raise ApiError(404, "ORDER_NOT_FOUND", "no order with this id for this account")
        return rt.order_json(v)

    @app.delete("/api/v1/orders/{order_id}", tags=["private"], response_model=dict[str, Any])
    async def cancel(order_id: Annotated[int, Field(ge=1, le=2**62)], market: MarketQ, p: Auth) -> Response:
        return _json(await rt.trading.cancel(p.user_id, market, order_id=order_id))

    @app.delete("/api/v1/orders/by-client-id/{client_order_id}", tags=["private"])
    async def cancel_by_cid(client_order_id: str, market: MarketQ, p: Auth) -> dict[str, Any]:
        return await rt.trading.cancel(p.user_id, market, client_id=client_order_id)

    @app.delete("/api/v1/orders", tags=["private"])
    async def cancel_all(market: MarketQ, p: Auth) -> dict[str, Any]:
        return await rt.trading.cancel_all(p.user_id, market)

    @app.patch("/api/v1/orders/{order_id}", tags=["private"])
    async def amend(order_id: Annotated[int, Field(ge=1, le=2**62)], req: AmendRequest, p: Auth) -> dict[str, Any]:
        return await rt.trading.amend(p.user_id, order_id, req)

    @app.get("/api/v1/my-trades", tags=["private"])
    async def my_trades(p: Auth, market: Annotated[str | None, Query(max_length=20)] = None,
                        start: StartQ = None, end: EndQ = None,
                        before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                        limit: Limit = 100) -> dict[str, Any]:
        sym = rt.trading.market(market).symbol if market else None
        return await rt.history.trades(p.user_id, sym, start, end, before_id, limit)

    @app.get("/api/v1/ledger", tags=["private"])
    async def ledger(p: Auth, asset: Annotated[str | None, Query(max_length=12)] = None,
                     start: StartQ = None, end: EndQ = None,
                     before: Annotated[str | None, Query(pattern=r"^\d{1,18}:\d{1,9}$")] = None,
                     limit: Limit = 100) -> dict[str, Any]:
        sym = rt.trading.asset(asset).symbol if asset else None
        cursor = tuple(int(x) for x in before.split(":")) if before else None
        return await rt.history.ledger(p.user_id, sym, start, end, cursor, limit)  # type: ignore[arg-type]

    @app.post("/api/v1/transfers", tags=["private"], status_code=201)
    async def transfer(req: TransferRequest, p: Auth) -> dict[str, Any]:
        return await rt.trading.transfer(p.user_id, req)

    @app.post("/api/v1/admin/credits", tags=["operator"], status_code=201, dependencies=[Depends(admin)])
    async def credit(req: CreditRequest) -> dict[str, Any]:
        return await rt.trading.credit(req)

    @app.post("/api/v1/admin/accounts", tags=["operator"], status_code=201, dependencies=[Depends(admin)])
    async def open_account(req: OpenAccountRequest) -> dict[str, Any]:
        """Open a signed-up user's ledger account (``dpg user create`` does); opening again is harmless."""
        async with rt.accounts.pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM users WHERE id = %s", (req.user_id,))
            if await cur.fetchone() is None:
                raise ApiError(404, "UNKNOWN_ACCOUNT", f"no user with id {req.user_id}")
        if not await rt.open_account(req.user_id):
            raise ApiError(503, "UNAVAILABLE", "the engine did not open the account; it opens at the user's next"
                           " login or when the exchange starts")
        return {"user_id": req.user_id, "open": True}

    @app.post("/api/v1/admin/por/epochs", tags=["operator"], status_code=201, dependencies=[Depends(admin)])
    async def mark_epoch() -> dict[str, Any]:
        """Mark a proof-of-reserves epoch now (its number: the UTC time in seconds)."""
        from dpg.core.commands import MarkEpoch

        epoch = int(time.time())
        seq, events = await rt.bus.submit(MarkEpoch(epoch))
        if not events or events[0][0] != E.EPOCH_MARKED:
            code, reason = (events[0][1], events[0][2]) if events else ("UNAVAILABLE", "no reply")
            raise ApiError(409 if code == "STALE_EPOCH" else 503, code, reason)
        return {"epoch": epoch, "seq": seq}

    # ------------------------------------------------------------------ websocket

    native = Dialect(lambda client, msg: _ws_message(rt, client, msg), _ws_refuse)
    binance_streams = binance.stream_dialect(rt)

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        """DPG's own protocol; a connection whose first message is Binance's (``{"method": …}``
        rather than ``{"op": …}``) is served Binance's market streams, as at ``/ws/<anything>``."""
        client = await rt.hub.accept(ws, client_ip(ws))
        await rt.hub.serve(client, lambda first: binance_streams if binance.is_binance(first) else native)

    return app


def _json(obj: Any, status: int = 200) -> Response:
    """A JSON answer that skips FastAPI's re-validation of what this module built itself."""
    return Response(json.dumps(obj, separators=(",", ":")).encode(), status_code=status,
                    media_type="application/json")


def _ws_refuse(client: Client, msg: dict[str, Any] | None, code: str, reason: str) -> None:
    client.send_json({**({"op": msg.get("op"), "id": msg.get("id")} if msg else {}), "error": body(code, reason)})


async def _ws_message(rt: Runtime, client: Client, msg: dict[str, Any]) -> None:
    op = msg.get("op")
    rid = msg.get("id")
    try:
        if op == "ping":
            client.send_json({"op": "pong", "id": rid})
        elif op in ("subscribe", "unsubscribe"):
            channels = msg.get("channels")
            if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels) or len(channels) > 50:
                raise ApiError(400, "INVALID_CHANNELS", "channels must be a list of at most 50 names")
            if op == "subscribe":
                names = [_channel(rt, client, ch) for ch in channels]
                if not rt.hub.room(client, names):
                    raise ApiError(400, "TOO_MANY_STREAMS", f"at most {rt.hub.max_streams} channels per connection")
                if any(name in PRIVATE for name in names):
                    await rt.hub.recheck(client)
                for name in names:
                    _subscribe(rt, client, name)
            else:
                for ch in channels:
                    rt.hub.unsubscribe(client, ch)
            client.send_json({"op": op, "id": rid, "channels": channels})
        elif op == "auth":
            await _ws_auth(rt, client, msg)
            client.send_json({"op": "auth", "id": rid, "user_id": client.account})
        elif op in ("place", "cancel"):
            if client.account is None or not client.can_trade:
                raise ApiError(401, "AUTH_REQUIRED", "authenticate with trade permission first")
            await rt.hub.recheck(client)
            if op == "place":
                order = msg.get("order")
                if not isinstance(order, dict):
                    raise ApiError(400, "INVALID_ORDER", "place needs an order object")
                result = await rt.trading.place(client.account, OrderRequest.model_validate(order))
            else:
                oid, cid, market = msg.get("order_id"), msg.get("client_order_id"), msg.get("market")
                if not isinstance(market, str) or not (isinstance(oid, int) or isinstance(cid, str)):
                    raise ApiError(400, "INVALID_ORDER", "cancel needs market and order_id or client_order_id")
                result = await rt.trading.cancel(client.account, market, oid if isinstance(oid, int) else 0,
                                                 cid if isinstance(cid, str) else "")
            client.send_json({"op": op, "id": rid, "result": result})
        else:
            raise ApiError(400, "UNKNOWN_OP", "op must be ping, subscribe, unsubscribe, auth, place or cancel")
    except ApiError as e:
        client.send_json({"op": op, "id": rid, "error": body(e.code, e.reason)})
    except AuthError as e:
        client.send_json({"op": op, "id": rid, "error": body(e.code, e.reason)})
    except ValueError as e:  # pydantic validation of an order
        client.send_json({"op": op, "id": rid, "error": body("INVALID_REQUEST", str(e)[:500])})


def _channel(rt: Runtime, client: Client, channel: str) -> str:
    """A channel's own name (``depth:btc-usdt`` is ``depth:BTC/USDT``); INVALID_CHANNELS if none."""
    if channel in PRIVATE:
        if client.account is None:
            raise ApiError(401, "AUTH_REQUIRED", f"{channel} needs authentication")
        return channel
    kind, _, rest = channel.partition(":")
    market_name, _, interval = rest.partition(":")
    if kind not in ("depth", "trades", "ticker", "candles"):
        raise ApiError(400, "INVALID_CHANNELS", f"unknown channel {channel!r}")
    m = rt.trading.market(market_name)
    if kind == "candles" and interval not in INTERVALS:
        raise ApiError(400, "INVALID_CHANNELS", f"candle interval must be one of {', '.join(INTERVALS)}")
    return f"{kind}:{m.symbol}" + (f":{interval}" if kind == "candles" else "")


def _subscribe(rt: Runtime, client: Client, name: str) -> None:
    """Subscribe to a channel named by ``_channel``; a depth or ticker channel starts with its state."""
    rt.hub.subscribe(client, name)
    kind, _, rest = name.partition(":")
    if kind == "depth":
        snap = rt.depth_json(rt.trading.market(rest), 1000)
        client.send_json({"channel": name, "type": "snapshot", **snap})
    elif kind == "ticker":
        client.send_json({"channel": name, "type": "ticker", "data": rt.ticker_json(rt.trading.market(rest))})


async def _ws_auth(rt: Runtime, client: Client, msg: dict[str, Any]) -> None:
    token = msg.get("token")
    if isinstance(token, str):
        user = await rt.accounts.session_user(token)
        grant = Grant(user, "trade", token=token)
    else:
        key, ts, sig = msg.get("key"), msg.get("timestamp"), msg.get("signature")
        window = msg.get("recv_window")
        if not (isinstance(key, str) and type(ts) is int and isinstance(sig, str)
                and (window is None or type(window) is int)):
            raise ApiError(400, "INVALID_AUTH", "auth needs token, or key, timestamp (ms) and signature"
                                                " (and an optional recv_window in ms)")
        payload = signed_payload(str(ts), None if window is None else str(window), "GET", "/ws")
        window = DEFAULT_RECV_WINDOW if window is None else window
        try:  # permissions are checked before the replay guard, so a read-only key can try again
            user = await rt.accounts.verify_signature(key, sig, payload, ts, window, client.ip, "trade")
            grant = Grant(user, "trade", key=key)
        except AuthError as e:
            if e.code != "PERMISSION_DENIED":
                raise
            user = await rt.accounts.verify_signature(key, sig, payload, ts, window, client.ip, "read")
            grant = Grant(user, "read", key=key)
    if client.account is not None and client.account != user:  # signed in again as someone else
        rt.hub.by_account.get(client.account, set()).discard(client)
    client.account, client.can_trade = user, grant.need == "trade"
    rt.hub.grant(client, "auth", grant)
    for ch in PRIVATE:
        if ch in client.channels:
            rt.hub.subscribe(client, ch)

