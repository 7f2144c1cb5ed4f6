"""Private REST of trading: balances, orders (place, read, cancel, amend), the caller's trades and
ledger, transfers between accounts; and ``OrderEntry``, the direct way of an order placed over REST.

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dpg.api import presentation as P
from dpg.api.deps import Auth, EndQ, Limit, MarketQ, Rt, StartQ, principal, runtime
from dpg.api.errors import ApiError
from dpg.api.runtime import Runtime
from dpg.api.trading import AmendRequest, OrderRequest, TransferRequest

router = APIRouter(tags=["private"])
OrderId = Annotated[int, Field(ge=1, le=2**62)]
BeforeId = Annotated[int | None, Query(ge=1, le=2**62)]
MarketFilter = Annotated[str | None, Query(max_length=20)]


@router.get("/api/v1/balances")
async def balances(rt: Rt, p: Auth) -> list[dict[str, str]]:
    return P.balances_json(rt.assets, rt.views.balance(p.user_id))


@router.post("/api/v1/orders", status_code=201, response_model=dict[str, Any])
async def place(rt: Rt, req: OrderRequest, p: Auth) -> Response:
    """Place an order; answered once it is journaled, with its fills. (Served by ``OrderEntry``:
    this route is its description, and its answer to a body that does not validate.)"""
    return await placed(rt, p.user_id, req)


async def placed(rt: Runtime, user_id: int, req: OrderRequest) -> Response:
    return P.json_response(rt.order_json(await rt.trading.place(user_id, req)), 201)


Handler = Callable[[Request, Exception], Awaitable[Response]]


class OrderEntry:
    """``POST /api/v1/orders`` without the framework's routing and dependency resolution, which
    cost about twice the order's own work (profiled under load): the body is parsed and validated
    by the same ``OrderRequest``, the caller is authenticated and rate-limited by the same
    ``principal``, the order is placed by the same ``placed``, and the errors are answered by the
    app's own handlers (``handlers``, by exception type). A body that does not validate, or is not
    plain JSON, goes on to the route above (its body replayed), which answers it as it always has.
    Sits inside ``Limits`` (per-address rate, body size, NUL)."""

    PATH = "/api/v1/orders"

    def __init__(self, app: ASGIApp, handlers: dict[type[Exception], Handler]) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            body = await request.body()
        except ApiError as e:  # too large (Limits)
            await self._answer(request, e, scope, receive, send)
            return
        req = _order_request(request.headers.get("content-type", ""), body)
        if req is None:
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            p = await principal(request)
            response = await placed(runtime(request), p.user_id, req)
        except Exception as e:
            await self._answer(request, e, scope, receive, send)
            return
        await response(scope, receive, send)

    async def _answer(self, request: Request, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        for kind in type(exc).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                response = await handler(request, exc)
                await response(scope, receive, send)
                return
        raise exc  # unexpected: CatchAll answers it (500 INTERNAL) and logs it


def _order_request(content_type: str, body: bytes) -> OrderRequest | None:
    """The order of a plain JSON body that validates, else None (the route answers it)."""
    if content_type != "application/json":
        return None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    try:
        return OrderRequest.model_validate(obj)
    except ValidationError:
        return None


def _replay(body: bytes, then: Receive) -> Receive:
    """A receive that gives ``body`` once more, whole, then whatever ``then`` gives."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


@router.get("/api/v1/orders/open")
async def open_orders(rt: Rt, p: Auth, market: MarketFilter = None) -> list[dict[str, Any]]:
    mi = rt.trading.market(market).index if market else None
    return [rt.order_json(v) for v in rt.views.open_orders(p.user_id, mi)]


@router.get("/api/v1/orders/history")
async def order_history(rt: Rt, p: Auth, market: MarketFilter = None, start: StartQ = None, end: EndQ = None,
                        before_id: BeforeId = None, limit: Limit = 100) -> dict[str, Any]:
    sym = rt.trading.market(market).symbol if market else None
    return await rt.history.orders(p.user_id, sym, start, end, before_id, limit)


@router.get("/api/v1/orders/by-client-id/{client_order_id}")
async def order_by_cid(rt: Rt, client_order_id: str, p: Auth) -> dict[str, Any]:
    v = await rt.find_order(p.user_id, client_id=client_order_id)
    if v is None:
        raise ApiError(404, "ORDER_NOT_FOUND", "no order with this client order id")
    return rt.order_json(v)


@router.get("/api/v1/orders/{order_id}")
async def order(rt: Rt, order_id: OrderId, p: Auth) -> dict[str, Any]:
    v = await rt.find_order(p.user_id, order_id)
    if v is None:
        raise ApiError(404, "ORDER_NOT_FOUND", "no order with this id for this account")
    return rt.order_json(v)


@router.delete("/api/v1/orders/{order_id}", response_model=dict[str, Any])
async def cancel(rt: Rt, order_id: OrderId, market: MarketQ, p: Auth) -> Response:
    return P.json_response(await rt.trading.cancel(p.user_id, market, order_id=order_id))


@router.delete("/api/v1/orders/by-client-id/{client_order_id}")
async def cancel_by_cid(rt: Rt, client_order_id: str, market: MarketQ, p: Auth) -> dict[str, Any]:
    return await rt.trading.cancel(p.user_id, market, client_id=client_order_id)


@router.delete("/api/v1/orders")
async def cancel_all(rt: Rt, market: MarketQ, p: Auth) -> dict[str, Any]:
    return await rt.trading.cancel_all(p.user_id, market)


@router.patch("/api/v1/orders/{order_id}")
async def amend(rt: Rt, order_id: OrderId, req: AmendRequest, p: Auth) -> dict[str, Any]:
    return await rt.trading.amend(p.user_id, order_id, req)


@router.get("/api/v1/my-trades")
async def my_trades(rt: Rt, p: Auth, market: MarketFilter = None, start: StartQ = None, end: EndQ = None,
                    before_id: BeforeId = None, limit: Limit = 100) -> dict[str, Any]:
    sym = rt.trading.market(market).symbol if market else None
    return await rt.history.trades(p.user_id, sym, start, end, before_id, limit)


@router.get("/api/v1/ledger")
async def ledger(rt: Rt, p: Auth, asset: Annotated[str | None, Query(max_length=12)] = None,
                 start: StartQ = None, end: EndQ = None,
                 before: Annotated[str | None, Query(pattern=r"^\d{1,18}:\d{1,9}$")] = None,
                 limit: Limit = 100) -> dict[str, Any]:
    sym = rt.trading.asset(asset).symbol if asset else None
    cursor = tuple(int(x) for x in before.split(":")) if before else None
    return await rt.history.ledger(p.user_id, sym, start, end, cursor, limit)  # type: ignore[arg-type]


@router.post("/api/v1/transfers", status_code=201)
async def transfer(rt: Rt, req: TransferRequest, p: Auth) -> dict[str, Any]:
    return await rt.trading.transfer(p.user_id, req)
