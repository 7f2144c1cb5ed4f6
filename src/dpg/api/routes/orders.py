"""Private REST of trading: balances, orders (place, read, cancel, amend), the caller's trades and
ledger, transfers between accounts.

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field

from dpg.api import presentation as P
from dpg.api.deps import Auth, EndQ, Limit, MarketQ, Rt, StartQ
from dpg.api.errors import ApiError
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
    return P.json_response(rt.order_json(await rt.trading.place(p.user_id, req)), 201)


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
