"""The FastAPI application: public and private REST, the WebSocket, auth, rate and size limits.

``Runtime`` is everything one API process holds: the bus to the engine, the views and market data
built from committed event batches, accounts, history. ``create_app(runtime)`` serves it.

Private REST calls authenticate either with a session (``Authorization: Bearer <token>``) or with
an API key and a signature: headers ``X-DPG-APIKEY``, ``X-DPG-TIMESTAMP`` (ms), optionally
``X-DPG-RECV-WINDOW`` (ms, default 5000) and ``X-DPG-SIGNATURE`` = hex HMAC-SHA256(secret,
"<timestamp>\\n<METHOD>\\n<path>[?query]\\n<body>"); when the window header is sent, it is signed too:
"<timestamp>\\n<recv_window>\\n<METHOD>\\n<path>[?query]\\n<body>".
"""



import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import psycopg
from fastapi import Depends, FastAPI, Header, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dpg.api.errors import ApiError, CatchAll, api_error_handler, body, send_json, validation_error_handler
from dpg.api.history import History
from dpg.api.marketdata import MarketData, Update
from dpg.api.ratelimit import TokenBuckets
from dpg.api.trading import AmendRequest, CreditRequest, OrderRequest, Trading, TransferRequest
from dpg.api.views import AccountViews, OrderView
from dpg.api.ws import INTERVALS, MAX_STREAMS, PRIVATE, Client, Dialect, Grant, Hub
from dpg.bus.wire import Batch
from dpg.core import events as E
from dpg.core.commands import OpenAccount
from dpg.core.engine import Engine
from dpg.core.model import Asset, Market
from dpg.identity import Accounts, AuthError

log = logging.getLogger("dpg.api")

MAX_BODY = 64 * 1024


class Runtime:
    def __init__(self, bus: Any, markets: list[Market], assets: list[Asset], accounts: Accounts,
                 history: History, admin_token: str, *, ip_rate: float = 50.0, key_rate: float = 50.0,
                 max_streams: int = MAX_STREAMS) -> None:
        self.bus = bus
        self.markets = markets
        self.assets = assets
        self.accounts = accounts
        self.history = history
        self.admin_token = admin_token
        self.views = AccountViews(markets, assets)
        self.md = MarketData(markets, assets)
        self.trading = Trading(bus, self.views, markets, assets)
        self.depth_seq: dict[int, int] = {}
        # more publishers of each update (other dialects): f(update, {market index: previous depth seq})
        self.publishers: list[Callable[[Update, dict[int, int]], None]] = []
        self.ip_limits = TokenBuckets(ip_rate, ip_rate * 2)
        self.key_limits = TokenBuckets(key_rate, key_rate * 2)
        # every socket: its messages against its address's bucket and one of its own at the per-key rate
        self.hub = Hub(accounts, self.ip_limits, key_rate, max_streams)
        accounts.on_revoke.append(self.hub.revoked)  # a logout or key revocation closes its sockets
        self.healthy = True
        # withdrawals (dpg.api.wallet): the signed deadline's distance and the per-account 24 h limits
        self.withdrawal_ttl = 6 * 3600
        self.withdrawal_daily_limits: dict[str, str] = {"BTC": "10", "ETH": "200", "USDT": "1000000"}
        self.address_cooldown = 86_400  # seconds before a newly allow-listed address is usable
        self.demo = False  # dpg up --demo: GET /api/v1/demo names the demo logins

    def status(self) -> tuple[bool, str]:
        """(ok, reason) for /health: the engine takes commands and this process's feed is whole."""
        if not self.healthy:
            return False, "this API process lost its place in the event feed; restart it"
        status = getattr(self.bus, "status", None)
        return status() if status is not None else (True, "")

    async def open_account(self, user_id: int) -> bool:
        """Open a user's ledger account (OpenAccount is idempotent). False, logged, when the engine
        cannot take it now: the account then opens at the user's next login, or when the exchange
        next starts (dpg.system.node)."""
        try:
            seq, events = await self.bus.submit(OpenAccount(user_id))
            if events and events[0][0] == E.REJECTED:
                raise RuntimeError(f"{events[0][1]}: {events[0][2]}")
            await self.views.wait_for(seq)
        except Exception as e:  # the user exists either way; the account opens later
            log.warning("event=account_open_deferred user=%d reason=%r", user_id, str(e) or type(e).__name__)
            return False
        return True

    async def find_order(self, account: int, order_id: int = 0, client_id: str = "") -> OrderView | None:
        """An order of ``account`` by id (or else client id): open and recently finished ones from
        the views, any other (finished before a restart, or long ago) from the projections."""
        v = self.views.order(account, order_id) if order_id else self.views.order_by_client_id(account, client_id)
        return v if v is not None else await self.history.order(account, order_id, client_id)

    def load(self, engine: Engine) -> None:
        self.views.load(engine)
        self.md.load(engine)
        self.depth_seq = {m.index: engine.seq for m in engine.markets}

    def on_batch(self, batch: Batch) -> None:
        """Committed batches, in order, on the event loop."""
        for seq, ts, events in batch:
            if seq <= self.views.seq:
                continue
            try:
                self.views.apply(seq, ts, events)
                upd = self.md.apply(seq, ts, events)
            except ValueError:
                log.exception("event=feed_gap at=%d", seq)
                self.healthy = False
                raise
            self._dispatch(upd)

    def _dispatch(self, upd: Update) -> None:
        hub = self.hub
        prevs: dict[int, int] = {}
        for symbol, change in upd.depth.items():
            m = self.trading.market(symbol)
            prev = prevs[m.index] = self.depth_seq.get(m.index, 0)
            self.depth_seq[m.index] = upd.seq
            channel = f"depth:{m.symbol}"
            if hub.has(channel):
                hub.publish(channel, {"type": "update", "seq": upd.seq, "prev_seq": prev,
                                      "bids": [[m.format_price(p), m.format_qty(q)] for p, q in change.get("bids", [])],
                                      "asks": [[m.format_price(p), m.format_qty(q)] for p, q in change.get("asks", [])],
                                      })
        for t in upd.trades:
            m = self.trading.market(t["market"])
            channel = f"trades:{m.symbol}"
            if hub.has(channel):
                hub.publish(channel, {"type": "trade", "data": self.trade_json(m, t)})
        for symbol in upd.tickers:
            channel = f"ticker:{self.trading.market(symbol).symbol}"
            if hub.has(channel):
                hub.publish(channel, {"type": "ticker", "data": self.ticker_json(symbol)})
        for symbol in upd.candles:
            m = self.trading.market(symbol)
            for interval in INTERVALS:
                channel = f"candles:{m.symbol}:{interval}"
                if hub.has(channel):
                    last = self.md.candles(m.symbol, interval, limit=1)
                    hub.publish(channel, {"type": "candle", "data": [self.candle_json(m, c) for c in last]})
        for publish in self.publishers:
            publish(upd, prevs)
        for account, items in upd.accounts.items():
            if account not in hub.by_account:
                continue
            for item in items:
                kind = str(item.get("type"))
                private = {"order": "orders", "fill": "fills", "balance": "balances"}.get(kind)
                if private:
                    hub.publish_private(account, private, {"type": kind, "data": self.private_json(item)})

    # ------------------------------------------------------------------ formatting of market data

    def depth_json(self, market: Market, limit: int) -> dict[str, Any]:
        d = self.md.depth(market.symbol, limit)
        return {"market": market.symbol, "seq": self.depth_seq.get(market.index, 0),
                "bids": [[market.format_price(p), market.format_qty(q)] for p, q in d["bids"]],
                "asks": [[market.format_price(p), market.format_qty(q)] for p, q in d["asks"]]}

    @staticmethod
    def trade_json(m: Market, t: dict[str, Any]) -> dict[str, Any]:
        return {"id": t["id"], "market": m.symbol, "price": m.format_price(t["price"]),
                "quantity": m.format_qty(t["qty"]), "quote_quantity": m.quote.format(t["quote_qty"]),
                "taker_side": t["side"], "time": t["ts"] // 1_000_000}

    def ticker_json(self, symbol: str) -> dict[str, Any]:
        m = self.trading.market(symbol)
        t = self.md.ticker(m.symbol)

        def px(key: str) -> str | None:
            v = t.get(key)
            return m.format_price(v) if v else None

        def qty(key: str) -> str | None:
            v = t.get(key)
            return m.format_qty(v) if v else None

        return {"market": m.symbol, "open": px("open"), "high": px("high"), "low": px("low"), "last": px("last"),
                "change": m.quote.format(t.get("change") or 0), "volume": m.format_qty(t.get("volume") or 0),
                "quote_volume": m.quote.format(t.get("quote_volume") or 0), "trades": t.get("trades", 0),
                "bid": px("bid"), "bid_quantity": qty("bid_qty"), "ask": px("ask"), "ask_quantity": qty("ask_qty")}

    @staticmethod
    def candle_json(m: Market, c: dict[str, Any]) -> dict[str, Any]:
        return {"time": c["t"] // 1_000_000, "open": m.format_price(c["open"]), "high": m.format_price(c["high"]),
                "low": m.format_price(c["low"]), "close": m.format_price(c["close"]),
                "volume": m.format_qty(c["volume"]), "quote_volume": m.quote.format(c["quote_volume"]),
                "trades": c["trades"]}

    def private_json(self, item: dict[str, Any]) -> dict[str, Any]:
        out = dict(item)
        out.pop("type", None)
        market = out.get("market")
        m = None
        if isinstance(market, int):
            m = self.markets[market]
        elif isinstance(market, str):
            m = self.trading.market(market)
        if m is not None:
            out["market"] = m.symbol
            for key in ("price",):
                if isinstance(out.get(key), int):
                    out[key] = m.format_price(out[key]) if out[key] else None
            for key in ("qty", "quantity", "remaining", "filled"):
                if isinstance(out.get(key), int):
                    out[key] = m.format_qty(out[key])
            if isinstance(out.get("quote_qty"), int):
                out["quote_qty"] = m.quote.format(out["quote_qty"])
            if isinstance(out.get("fee"), int):
                fee_asset = out.get("fee_asset")
                asset = self.trading.asset(fee_asset) if isinstance(fee_asset, str) else None
                out["fee"] = asset.format(out["fee"]) if asset else str(out["fee"])
        asset_name = out.get("asset")
        if isinstance(asset_name, str):
            a = self.trading.asset(asset_name)
            for key in ("d_available", "d_locked", "available", "locked"):
                if isinstance(out.get(key), int):
                    out[key] = a.format(out[key])
        for k, v in list(out.items()):
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**53:
                out[k] = str(v)
        return out


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
        return [{"market": m.symbol, "base": m.base.symbol, "quote": m.quote.symbol,
                 "tick_size": m.quote.format(m.tick_size, m.quote.places_of(m.tick_size)),
                 "lot_size": m.base.format(m.lot_size, m.base.places_of(m.lot_size)),
                 "min_notional": m.quote.format(m.min_notional, m.quote.places_of(m.tick_size)),
                 "maker_fee": _rate(m.maker_fee_ppm), "taker_fee": _rate(m.taker_fee_ppm),
                 "price_decimals": m.quote.places_of(m.tick_size), "quantity_decimals": m.base.places_of(m.lot_size),
                 "status": "trading"} for m in rt.markets]

    @app.get("/api/v1/assets", tags=["public"])
    async def assets() -> list[dict[str, Any]]:
        return [{"asset": a.symbol, "decimals": a.decimals} for a in rt.assets]

    @app.get("/api/v1/depth", tags=["public"])
    async def depth(market: MarketQ, limit: Limit = 100) -> dict[str, Any]:
        return rt.depth_json(rt.trading.market(market), limit)

    @app.get("/api/v1/trades", tags=["public"])
    async def trades(market: MarketQ, limit: Limit = 100) -> list[dict[str, Any]]:
        m = rt.trading.market(market)
        return [rt.trade_json(m, t) for t in rt.md.trades(m.symbol, limit)]

    @app.get("/api/v1/ticker", tags=["public"])
    async def ticker(market: Annotated[str | None, Query(max_length=20)] = None) -> list[dict[str, Any]]:
        chosen = [rt.trading.market(market)] if market else rt.markets
        return [rt.ticker_json(m.symbol) for m in chosen]

    @app.get("/api/v1/candles", tags=["public"])
    async def candles(market: MarketQ, interval: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "1m",
                      limit: Limit = 500, start: StartQ = None, end: EndQ = None) -> list[dict[str, Any]]:
        m = rt.trading.market(market)
        rows = rt.md.candles(m.symbol, interval, limit,
                             start * 1_000_000 if start is not None else None,
                             end * 1_000_000 if end is not None else None)
        return [rt.candle_json(m, c) for c in rows]

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
        return rt.trading.balances_json(p.user_id)

    @app.post("/api/v1/orders", tags=["private"], status_code=201, response_model=dict[str, Any])
    async def place(req: OrderRequest, p: Auth) -> Response:
        return _json(await rt.trading.place(p.user_id, req), 201)

    @app.get("/api/v1/orders/open", tags=["private"])
    async def open_orders(p: Auth, market: Annotated[str | None, Query(max_length=20)] = None) -> list[dict[str, Any]]:
        mi = rt.trading.market(market).index if market else None
        return [rt.trading.order_json(v) for v in rt.views.open_orders(p.user_id, mi)]

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
        return rt.trading.order_json(v)

    @app.get("/api/v1/orders/{order_id}", tags=["private"])
    async def order(order_id: Annotated[int, Field(ge=1, le=2**62)], p: Auth) -> dict[str, Any]:
        v = await rt.find_order(p.user_id, order_id)
        if v is None:
            raise ApiError(404, "ORDER_NOT_FOUND", "no order with this id for this account")
        return rt.trading.order_json(v)

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
        from dpg.core import events as E
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


def _rate(ppm: int) -> str:
    from decimal import Decimal

    return format((Decimal(ppm) / Decimal(1_000_000)).normalize(), "f")


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
        client.send_json({"channel": name, "type": "ticker", "data": rt.ticker_json(rest)})


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

