"""Trading requests as the API receives them, turned into commands and answered: the one place
where API decimals become base units and engine events become API answers (REST and WebSocket
share it)."""

from __future__ import annotations

import re
from collections import deque
from typing import Any, Literal, Protocol, cast

from pydantic import AliasChoices, BaseModel, Field

from dpg.api.errors import ApiError, rejection
from dpg.api.presentation import order_json
from dpg.api.views import AccountViews, OrderView
from dpg.core import events as E
from dpg.core.commands import (
    AdjustMargin,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    Credit,
    PlaceOrder,
    SetLeverage,
    SetMarginMode,
    Transfer,
)
from dpg.core.errors import DomainError
from dpg.core.events import Event
from dpg.core.model import STP, Asset, Market, MarketKind, OrderFlag, OrderStatus, OrderType, Side

Amount = str  # decimal strings at the edge: never floats
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,36}$")  # what a client may name an order
MAX_ORDER_ID = 2**62
MAX_FILLS_SHOWN = 200  # an order's fills in its answer (dpg.api.views keeps as many)


class Bus(Protocol):
    """The way to the engine: in this process (``dpg.bus.local``) or over Redis (``dpg.bus.redis_bus``)."""

    async def submit(self, cmd: Command) -> tuple[int, list[Event]]: ...

    def status(self) -> tuple[bool, str]: ...


class OrderRequest(BaseModel):
    market: str = Field(description="e.g. BTC/USDT (also BTC-USDT or BTCUSDT)", max_length=20)
    side: Literal["buy", "sell"]
    type: Literal["limit", "ioc", "fok", "post_only", "market", "stop_limit", "take_profit_limit", "stop_market",
                  "take_profit_market"] = Field(default="limit", description="stop_market and take_profit_market:"
                                                " perpetuals only, triggered by the mark price")
    price: Amount | None = Field(default=None, description="limit price, quote per 1 base", max_length=40)
    quantity: Amount | None = Field(default=None, description="base quantity", max_length=40)
    quote_quantity: Amount | None = Field(default=None, description="market buy: quote to spend", max_length=40)
    stop_price: Amount | None = Field(default=None, description="stop_limit and take_profit_limit: the last trade"
                                      " price that turns the order into a limit order; stop_market and"
                                      " take_profit_market: the mark price that turns it into a market order",
                                      max_length=40, validation_alias=AliasChoices("stop_price", "stopPrice"))
    reduce_only: bool = Field(default=False, description="perpetuals: never increases the position",
                              validation_alias=AliasChoices("reduce_only", "reduceOnly"))
    close_position: bool = Field(default=False, description="perpetuals: a market, stop_market or"
                                 " take_profit_market order closing the whole position (no quantity)",
                                 validation_alias=AliasChoices("close_position", "closePosition"))
    client_order_id: str | None = Field(default=None, min_length=1, max_length=36, pattern=CLIENT_ORDER_ID.pattern)
    stp: Literal["expire_taker", "expire_maker", "expire_both"] = "expire_taker"


class AmendRequest(BaseModel):
    market: str = Field(max_length=20)
    price: Amount | None = Field(default=None, max_length=40)
    quantity: Amount | None = Field(default=None, description="new total quantity", max_length=40)


class TransferRequest(BaseModel):
    to_user_id: int = Field(gt=0, lt=2**62)
    asset: str = Field(max_length=12)
    amount: Amount = Field(max_length=60)


class CreditRequest(BaseModel):
    user_id: int = Field(gt=0, lt=2**62)
    asset: str = Field(max_length=12)
    amount: Amount = Field(max_length=60)
    reference: str = Field(min_length=1, max_length=200)


_OTYPES = {"limit": OrderType.LIMIT, "ioc": OrderType.IOC, "fok": OrderType.FOK, "post_only": OrderType.POST_ONLY,
           "market": OrderType.MARKET, "stop_limit": OrderType.STOP_LIMIT,
           "take_profit_limit": OrderType.TAKE_PROFIT_LIMIT, "stop_market": OrderType.STOP_MARKET,
           "take_profit_market": OrderType.TAKE_PROFIT_MARKET}
_PERP_ONLY = (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)
_STOP_MARKETS = (OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET)
_STPS = {"expire_taker": STP.EXPIRE_TAKER, "expire_maker": STP.EXPIRE_MAKER, "expire_both": STP.EXPIRE_BOTH}


def check_order(m: Market, otype: OrderType, price: int, qty: int, quote_qty: int, stop_price: int) -> None:
    """The market's rules that need no state (positive amounts, tick, lot, minimum notional), checked
    here so that an order they refuse never becomes a journaled command; the codes are the engine's,
    which checks them again (it trusts no command). Funds, duplicates and the book are its alone.

    Kept at the edge on purpose, though the engine says the same rules: a refused order must not
    reach the journal (tests/api/test_edge.py counts its seq), and these reasons name the market's
    tick, lot and minimum in decimals where the engine's name base units."""
    if otype == OrderType.MARKET and quote_qty:  # a market buy by quote amount
        if quote_qty < 0:
            raise ApiError(400, "INVALID_AMOUNT", "quote_quantity must be positive")
        if quote_qty < m.min_notional:
            raise ApiError(400, "BELOW_MIN_NOTIONAL", f"quote_quantity is below the minimum notional "
                                                      f"{m.quote.format(m.min_notional)} {m.quote.symbol}")
        return
    if otype != OrderType.MARKET and price <= 0:
        raise ApiError(400, "INVALID_PRICE", "price must be positive")
    if qty <= 0:
        raise ApiError(400, "INVALID_QUANTITY", "quantity must be positive")
    check_grid(m, price, qty)
    if otype != OrderType.MARKET and m.notional(price, qty) < m.min_notional:
        raise ApiError(400, "BELOW_MIN_NOTIONAL", f"price x quantity is below the minimum notional "
                                                  f"{m.quote.format(m.min_notional)} {m.quote.symbol}")
    if otype in (OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
        if stop_price <= 0:
            raise ApiError(400, "INVALID_PRICE", "stop_price must be positive")
        check_grid(m, stop_price, 0, "stop_price")


def check_grid(m: Market, price: int, qty: int, what: str = "price") -> None:
    """PRICE_OFF_TICK / QUANTITY_OFF_LOT unless the price is on the market's tick and the quantity on
    its lot (zero passes: an amendment leaves it unchanged)."""
    if price % m.tick_size:
        raise ApiError(400, "PRICE_OFF_TICK", f"{what} must be a multiple of the tick size "
                                              f"{m.format_price(m.tick_size)}")
    if qty % m.lot_size:
        raise ApiError(400, "QUANTITY_OFF_LOT", f"quantity must be a multiple of the lot size "
                                                f"{m.format_qty(m.lot_size)}")


class Stamps:
    """The commit times (ns) of the last ``kept`` commands the API applied, by seq: an engine reply
    carries a command's seq and events but not its time, which arrives with its committed batch
    (``Runtime.on_batch`` adds each before the views see it)."""

    def __init__(self, kept: int = 1 << 16) -> None:
        self._ts: deque[int] = deque(maxlen=kept)
        self.seq = 0  # the seq of the last time added

    def add(self, seq: int, ts: int) -> None:
        if seq != self.seq + 1:
            self._ts.clear()
        self._ts.append(ts)
        self.seq = seq

    def get(self, seq: int) -> int | None:
        back = self.seq - seq
        return self._ts[-1 - back] if 0 <= back < len(self._ts) else None


def order_reply(seq: int, ts: int, events: list[Event]) -> OrderView:
    """The order a PlaceOrder made, as its own events leave it (ORDER_NEW first, then its trades,
    trigger and end; the same reading as ``AccountViews.apply``, for this one order)."""
    new = cast(E.OrderNew, events[0])
    oid = new.oid
    v = OrderView(oid, new.account, new.market, int(new.side), int(new.otype), new.price, new.qty, new.quote_qty,
                  new.client_id, int(new.stp), created_seq=seq, created_ts=ts, updated_seq=seq, updated_ts=ts,
                  stop_price=new.stop_price, triggered=not new.stop_price)
    for ev in events[1:]:
        kind = ev[0]
        if kind == E.TRADE:
            t = cast(E.Trade, ev)
            for order, fee, role in ((t.taker_oid, t.taker_fee, "taker"), (t.maker_oid, t.maker_fee, "maker")):
                if order == oid:
                    v.filled += t.qty
                    v.filled_quote += t.notional
                    v.fee += fee
                    v.status = OrderStatus.PARTIALLY_FILLED.value
                    if len(v.fills) < MAX_FILLS_SHOWN:
                        v.fills.append({"trade_id": t.trade_id, "price": t.price, "qty": t.qty, "fee": fee,
                                        "role": role})
        elif kind == E.ORDER_TRIGGERED and cast(E.OrderTriggered, ev).oid == oid:
            v.triggered = True
        elif kind == E.ORDER_DONE and cast(E.OrderDone, ev).oid == oid:
            done = cast(E.OrderDone, ev)
            v.status, v.reason = done.status, done.reason
            break  # a finished order takes no more events
    return v


class Trading:
    """Orders, cancellations, amendments, transfers and credits: checked, submitted to the engine,
    answered once committed and applied to this process's views (a client reads its own write)."""

    def __init__(self, bus: Bus, views: AccountViews, markets: list[Market], assets: list[Asset]) -> None:
        self.bus = bus
        self.views = views
        self.markets = markets  # the engine's append-only lists (or a replica's)
        self.assets = assets
        self.stamps = Stamps()

    # ------------------------------------------------------------------ lookups and conversions

    def market(self, name: str) -> Market:
        """A market by its symbol (``BTC/USDT``, ``BTC-PERP``) or a spelling of it (``BTC-USDT``,
        ``BTCUSDT``, ``BTCUSDT_PERP``): spot markets and perpetuals alike."""
        upper = name.upper()
        key = upper.replace("-", "/").replace("_", "/")
        for m in self.markets:
            if m.symbol == key or m.compact == key or m.symbol == upper or m.compact == upper:
                return m
        raise ApiError(404, "UNKNOWN_MARKET", f"unknown market {name!r}")

    def spot_market(self, name: str) -> Market:
        """A spot market by name; a perpetual's name is an unknown market here."""
        m = self.market(name)
        if m.kind != MarketKind.SPOT:
            raise ApiError(404, "UNKNOWN_MARKET", f"unknown spot market {name!r}")
        return m

    def spot_markets(self) -> list[Market]:
        """The spot markets, in listing order (the perpetuals are the futures API's)."""
        return [m for m in self.markets if m.kind == MarketKind.SPOT]

    def perp_markets(self) -> list[Market]:
        """The perpetuals, in listing order."""
        return [m for m in self.markets if m.kind == MarketKind.PERP]

    def asset(self, symbol: str) -> Asset:
        for a in self.assets:
            if a.symbol == symbol.upper():
                return a
        raise ApiError(404, "UNKNOWN_ASSET", f"unknown asset {symbol!r}")

    @staticmethod
    def units(asset: Asset, text: str, what: str) -> int:
        """Base units of ``asset`` from a decimal string (``dpg.core.model.parse_amount``, the one
        amount parser); a refusal is a 400 INVALID_AMOUNT, answered before any command exists."""
        try:
            return asset.to_units(text, what)
        except DomainError as e:
            raise ApiError(400, e.code.value, e.reason) from None

    async def submit(self, cmd: Command) -> tuple[int, list[Event]]:
        """``cmd`` applied, read back in the views (a refusal raised as its ApiError)."""
        return await self._submit(cmd)

    async def _submit(self, cmd: Command) -> tuple[int, list[Event]]:
        seq, events = await self.bus.submit(cmd)
        if events and events[0][0] == E.REJECTED:
            refused = cast(E.Rejected, events[0])
            raise rejection(refused.code, refused.reason)
        await self.views.wait_for(seq)  # read your own write
        return seq, events

    # ------------------------------------------------------------------ commands

    async def place(self, account: int, req: OrderRequest) -> OrderView:
        """The order placed, built from the command's own events (the views serve later reads)."""
        m = self.market(req.market)
        otype = _OTYPES[req.type]
        if m.kind == MarketKind.PERP:
            return await self._place_perp(account, m, otype, req)
        if otype in _PERP_ONLY or req.reduce_only or req.close_position:
            raise ApiError(400, "INVALID_ORDER", "stop_market, take_profit_market, reduce_only and close_position"
                                                 " are for perpetuals")
        price = qty = quote_qty = 0
        if otype == OrderType.MARKET:
            if req.price is not None:
                raise ApiError(400, "INVALID_PRICE", "a market order takes no price")
            if (req.quantity is None) == (req.quote_quantity is None):
                raise ApiError(400, "INVALID_ORDER", "a market order needs exactly one of quantity, quote_quantity")
            if req.quote_quantity is not None and req.side != "buy":
                raise ApiError(400, "INVALID_ORDER", "quote_quantity is only for market buys")
        else:
            if req.price is None or req.quantity is None:
                raise ApiError(400, "INVALID_ORDER", f"a {req.type} order needs price and quantity")
            if req.quote_quantity is not None:
                raise ApiError(400, "INVALID_ORDER", "quote_quantity is only for market buys")
        if req.price is not None:
            price = self.units(m.quote, req.price, "price")
        if req.quantity is not None:
            qty = self.units(m.base, req.quantity, "quantity")
        if req.quote_quantity is not None:
            quote_qty = self.units(m.quote, req.quote_quantity, "quote_quantity")
            if quote_qty <= 0:
                raise ApiError(400, "INVALID_AMOUNT", "quote_quantity must be positive")
        stop_price = 0
        if otype in (OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
            if req.stop_price is None:
                raise ApiError(400, "INVALID_ORDER", f"a {req.type} order needs stop_price")
            stop_price = self.units(m.quote, req.stop_price, "stop_price")
        elif req.stop_price is not None:
            raise ApiError(400, "INVALID_ORDER", "stop_price is only for stop_limit and take_profit_limit orders")
        check_order(m, otype, price, qty, quote_qty, stop_price)
        side = Side.BUY if req.side == "buy" else Side.SELL
        cmd = PlaceOrder(account, m.symbol, side, otype, price, qty, quote_qty, req.client_order_id or "",
                         _STPS[req.stp], stop_price)
        seq, events = await self._submit(cmd)
        ts = self.stamps.get(seq)
        if ts is None:  # more than Stamps' kept commands were applied meanwhile: the view has its time
            v = self.views.order(account, cast(E.OrderNew, events[0]).oid)
            assert v is not None
            ts = v.created_ts
        return order_reply(seq, ts, events)

    async def _place_perp(self, account: int, m: Market, otype: OrderType, req: OrderRequest) -> OrderView:
        """An order on a perpetual: sized in the base asset; reduce-only, close-position and the
        stop-market and take-profit-market types (triggered by the mark price) allowed."""
        if otype in (OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
            raise ApiError(400, "INVALID_ORDER", "perpetuals take stop_market and take_profit_market stops")
        if req.quote_quantity is not None:
            raise ApiError(400, "INVALID_ORDER", "perpetual orders are sized in the base asset, not a quote amount")
        flags = OrderFlag.REDUCE_ONLY.value if req.reduce_only else 0
        price = qty = stop_price = 0
        if otype in _STOP_MARKETS:
            if req.price is not None:
                raise ApiError(400, "INVALID_PRICE", f"a {req.type} order takes no price")
        elif req.price is None:
            raise ApiError(400, "INVALID_ORDER", f"a {req.type} order needs price and quantity")
        if req.close_position:
            if otype not in _STOP_MARKETS:
                raise ApiError(400, "INVALID_ORDER", "close_position is for market, stop_market and"
                                                     " take_profit_market orders")
            if req.quantity is not None:
                raise ApiError(400, "INVALID_ORDER", "a close_position order takes no quantity")
            flags |= OrderFlag.CLOSE_POSITION.value | OrderFlag.REDUCE_ONLY.value
        else:
            if req.quantity is None:
                raise ApiError(400, "INVALID_ORDER", f"a {req.type} order needs quantity")
            qty = self.units(m.base, req.quantity, "quantity")
            if qty <= 0:
                raise ApiError(400, "INVALID_QUANTITY", "quantity must be positive")
        if req.price is not None:
            price = self.units(m.quote, req.price, "price")
            if price <= 0:
                raise ApiError(400, "INVALID_PRICE", "price must be positive")
        if otype in _PERP_ONLY:
            if req.stop_price is None:
                raise ApiError(400, "INVALID_ORDER", f"a {req.type} order needs stop_price")
            stop_price = self.units(m.quote, req.stop_price, "stop_price")
            if stop_price <= 0:
                raise ApiError(400, "INVALID_PRICE", "stop_price must be positive")
            check_grid(m, stop_price, 0, "stop_price")
        elif req.stop_price is not None:
            raise ApiError(400, "INVALID_ORDER", "stop_price is only for stop_market and take_profit_market orders")
        check_grid(m, price, qty)
        if price and qty and not flags and m.notional(price, qty) < m.min_notional:
            raise ApiError(400, "BELOW_MIN_NOTIONAL", f"price x quantity is below the minimum notional "
                                                      f"{m.quote.format(m.min_notional)} {m.quote.symbol}")
        side = Side.BUY if req.side == "buy" else Side.SELL
        cmd = PlaceOrder(account, m.symbol, side, otype, price, qty, 0, req.client_order_id or "", _STPS[req.stp],
                         stop_price, flags)
        seq, events = await self._submit(cmd)
        ts = self.stamps.get(seq)
        if ts is None:
            v = self.views.order(account, cast(E.OrderNew, events[0]).oid)
            assert v is not None
            ts = v.created_ts
        return order_reply(seq, ts, events)

    async def set_leverage(self, account: int, m: Market, leverage: int) -> int:
        seq, _ = await self._submit(SetLeverage(account, m.symbol, leverage))
        return seq

    async def set_margin_mode(self, account: int, m: Market, isolated: bool) -> int:
        seq, _ = await self._submit(SetMarginMode(account, m.symbol, isolated))
        return seq

    async def adjust_margin(self, account: int, m: Market, amount: int) -> int:
        seq, _ = await self._submit(AdjustMargin(account, m.symbol, amount))
        return seq

    async def cancel(self, account: int, market: str, order_id: int = 0, client_id: str = "") -> dict[str, Any]:
        m = self.market(market)
        if not (0 < order_id <= MAX_ORDER_ID or (order_id == 0 and CLIENT_ORDER_ID.fullmatch(client_id))):
            # no order has such an id (or none was given): answered here, not journaled
            raise ApiError(404, "ORDER_NOT_FOUND", "no order with this id for this account")
        _, events = await self._submit(CancelOrder(account, m.symbol, order_id, client_id))
        # the answer is the whole order, with its fills before this command, which this command's
        # events do not carry: read from the views, which have applied it
        done = next(cast(E.OrderDone, e) for e in events if e[0] == E.ORDER_DONE)
        v = self.views.order(account, done.oid)
        assert v is not None
        return order_json(self.markets[v.market], v)

    async def cancel_all(self, account: int, market: str) -> dict[str, Any]:
        m = self.market(market)
        _, events = await self._submit(CancelAll(account, m.symbol))
        ids = [cast(E.OrderDone, e).oid for e in events if e[0] == E.ORDER_DONE]
        return {"market": m.symbol, "cancelled": ids}

    async def amend(self, account: int, order_id: int, req: AmendRequest) -> dict[str, Any]:
        m = self.market(req.market)
        if req.price is None and req.quantity is None:
            raise ApiError(400, "INVALID_ORDER", "give a new price, a new quantity, or both")
        price = self.units(m.quote, req.price, "price") if req.price is not None else 0
        qty = self.units(m.base, req.quantity, "quantity") if req.quantity is not None else 0
        if (req.price is not None and price <= 0) or (req.quantity is not None and qty <= 0):
            raise ApiError(400, "INVALID_AMOUNT", "price and quantity must be positive")
        check_grid(m, price, qty)
        if not 0 < order_id <= MAX_ORDER_ID:
            raise ApiError(404, "ORDER_NOT_FOUND", "no order with this id for this account")
        await self._submit(AmendOrder(account, m.symbol, order_id, price, qty))
        v = self.views.order(account, order_id)
        assert v is not None
        return order_json(self.markets[v.market], v)

    async def transfer(self, account: int, req: TransferRequest) -> dict[str, Any]:
        a = self.asset(req.asset)
        amount = self.units(a, req.amount, "amount")
        if amount <= 0:
            raise ApiError(400, "INVALID_AMOUNT", "the amount must be positive")
        if req.to_user_id == account:
            raise ApiError(400, "SELF_TRANSFER", "cannot transfer to the same account")
        seq, _ = await self._submit(Transfer(account, req.to_user_id, a.symbol, amount))
        return {"seq": seq, "from_user_id": account, "to_user_id": req.to_user_id, "asset": a.symbol,
                "amount": a.format(amount)}

    async def credit(self, req: CreditRequest) -> dict[str, Any]:
        a = self.asset(req.asset)
        amount = self.units(a, req.amount, "amount")
        if amount <= 0:
            raise ApiError(400, "INVALID_AMOUNT", "the amount must be positive")
        seq, _ = await self._submit(Credit(req.user_id, a.symbol, amount, req.reference))
        return {"seq": seq, "user_id": req.user_id, "asset": a.symbol, "amount": a.format(amount),
                "reference": req.reference}
