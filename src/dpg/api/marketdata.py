"""Public market data from engine events: depth, recent trades, 24 h tickers and candles, and the
private per-account updates of each command, for the API to serve and stream.

Pure: no I/O and no clock; every time is a command's ``ts`` (ns since the epoch, UTC). Loaded from
an engine at its seq, then advanced by ``apply`` one command at a time, in order. Prices and
quantities are int base units (quote units per whole base; base units), as in the events.

``apply`` only updates dicts and appends; sorting happens in the queries. The depth follows each
resting order by id (market, side, price, remaining), so an ORDER_DONE or a re-queueing amend
knows which level to lower. The 24 h ticker is rolling with one-minute precision: it counts the
one-minute buckets that end after ``latest ts - 24 h`` (the window is 24 h to 24 h + 1 min long).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from heapq import nlargest, nsmallest
from itertools import islice
from typing import Any, cast

from dpg.api.views import SIDE_NAMES, STATUS_NAMES, STP_NAMES, TYPE_NAMES
from dpg.core import events as E
from dpg.core.engine import Engine
from dpg.core.events import Cause, Event
from dpg.core.model import Asset, Market, OrderType, Side

MINUTE = 60 * 10**9  # ns
DAY = 24 * 60 * MINUTE
INTERVALS: dict[str, int] = {
    "1m": MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "1h": 60 * MINUTE,
    "4h": 240 * MINUTE,
    "1d": DAY,
}
_INTERVAL_NS = tuple(INTERVALS.values())
_INTERVAL_INDEX = {name: i for i, name in enumerate(INTERVALS)}
CANDLES_KEPT = 1000  # per market and interval

BUY = Side.BUY.value
_CAUSE_NAMES = {c.value: c.name.lower() for c in Cause}
_RESTING_TYPES = frozenset((OrderType.LIMIT.value, OrderType.POST_ONLY.value))

_EMPTY = 0  # cached best price of an empty side (prices are positive)
_DIRTY = -1  # cached best price unknown: recomputed by the next query
_NEVER = 1 << 126  # a time later than any ts

_BALANCE = E.BALANCE
_TRADE = E.TRADE
_DONE = E.ORDER_DONE
_NEW = E.ORDER_NEW
_AMENDED = E.ORDER_AMENDED


@dataclass(slots=True)
class Update:
    """What one ``apply`` changed, for streaming to WebSocket clients."""

    seq: int
    depth: dict[str, dict[str, list[list[int]]]]  # market -> changed levels [price, new total]; 0: gone
    trades: list[dict[str, Any]]  # like ``MarketData.trades`` rows, with "market"
    tickers: set[str]  # markets whose ticker changed
    candles: set[str]  # markets whose candles changed
    accounts: dict[int, list[dict[str, Any]]]  # private updates per account id (> 0)


class _Command:
    """What applying one command's events gathers: the update, the depth levels touched, and the
    order of this command that may come to rest (a new order, a re-queued amend, a triggered stop)."""

    __slots__ = ("p_oid", "p_rec", "p_rests", "touched", "ts", "up")

    def __init__(self, up: Update, ts: int) -> None:
        self.up = up
        self.ts = ts
        self.touched: dict[tuple[int, int, int], None] = {}
        self.p_oid = 0
        self.p_rec: _Open | None = None
        self.p_rests = False


class _Open:
    """A resting order as the depth sees it."""

    __slots__ = ("account", "market", "price", "remaining", "side")

    def __init__(self, market: int, side: int, price: int, remaining: int, account: int) -> None:
        self.market = market
        self.side = side
        self.price = price  # units
        self.remaining = remaining  # units
        self.account = account


class _Market:
    """Everything kept for one market. A candle is ``[t, open, high, low, close, volume,
    quote_volume, trades]``; the rolling window holds the same one-minute candle lists."""

    __slots__ = (
        "base",
        "best",
        "candles",
        "index",
        "last",
        "last_ts",
        "perp",
        "quote",
        "r_buckets",
        "r_count",
        "r_high",
        "r_hl_ok",
        "r_low",
        "r_quote",
        "r_volume",
        "sides",
        "symbol",
        "trades",
    )

    def __init__(self, index: int, symbol: str, trades_kept: int) -> None:
        self.index = index
        self.symbol = symbol
        if symbol.endswith("-PERP"):  # a linear perpetual: quoted, margined, its fees paid in USDT
            base, quote = symbol[:-5], "USDT"
        else:
            base, _, quote = symbol.partition("/")
        self.base = base
        self.quote = quote
        self.perp = symbol.endswith("-PERP")
        self.sides: tuple[dict[int, int], dict[int, int]] = ({}, {})  # bids, asks: price -> total qty
        self.best = [_EMPTY, _EMPTY]  # cached best bid, best ask (or _DIRTY)
        self.trades: deque[dict[str, Any]] = deque(maxlen=trades_kept)
        self.candles: tuple[deque[list[int]], ...] = tuple(deque(maxlen=CANDLES_KEPT) for _ in _INTERVAL_NS)
        self.last = 0  # last trade price, 0 before the first trade
        self.last_ts = 0  # ts the last trade was counted at (never decreases)
        self.r_buckets: deque[list[int]] = deque()  # one-minute candles inside the 24 h window
        self.r_volume = 0
        self.r_quote = 0
        self.r_count = 0
        self.r_high = 0
        self.r_low = 0
        self.r_hl_ok = False  # whether r_high/r_low are right (else recomputed from the buckets)

    def best_price(self, side: int) -> int:
        """The best price of a side, or 0 when it is empty."""
        b = self.best[side]
        if b == _DIRTY:
            levels = self.sides[side]
            b = (max(levels) if side == BUY else min(levels)) if levels else _EMPTY
            self.best[side] = b
        return b


class MarketData:
    """Depth, trades, tickers and candles of every market, kept current from engine events."""

    def __init__(self, engine_markets: list[Market], assets: list[Asset], *, trades_kept: int = 1000) -> None:
        if trades_kept < 1:
            raise ValueError("trades_kept must be at least 1")
        self._markets_ref = engine_markets  # the engine's append-only list, read by index
        self._assets_ref = assets
        self._trades_kept = trades_kept
        self._m: list[_Market] = []
        self._by_symbol: dict[str, _Market] = {}
        self._asset_symbols: list[str] = [a.symbol for a in assets]
        self._orders: dict[int, _Open] = {}  # resting orders by id
        self._latest = 0  # latest ts seen (commands and trades)
        self._next_expiry = _NEVER  # when the oldest bucket of some rolling window leaves it
        self._last_trade_id = 0
        self._loaded = False
        self._handlers: dict[int, Callable[[_Command, Event], None]] = {
            _BALANCE: self._on_balance, _TRADE: self._on_trade, _DONE: self._on_done, _NEW: self._on_new,
            _AMENDED: self._on_amended, E.ORDER_TRIGGERED: self._on_triggered,
            E.MARKET_LISTED: self._on_market_listed, E.ASSET_LISTED: self._on_asset_listed,
        }
        self.seq = 0
        for i, m in enumerate(engine_markets):
            self._add_market(i, m.symbol)

    # ------------------------------------------------------------------ feeding

    def load(self, engine: Engine) -> None:
        """Take the depth and the resting orders of ``engine`` at ``engine.seq`` (copied)."""
        for i, m in enumerate(engine.markets):
            self._add_market(i, m.symbol)
        self._asset_symbols = [a.symbol for a in engine.assets]
        for st in self._m:
            st.sides = ({}, {})
            st.best = [_DIRTY, _DIRTY]
        for i, book in enumerate(engine.books):
            m = engine.markets[i]
            tick, lot = m.tick_size, m.lot_size
            st = self._m[i]
            st.sides = (
                {p * tick: lv.qty * lot for p, lv in book.bids.levels.items() if lv.qty},
                {p * tick: lv.qty * lot for p, lv in book.asks.levels.items() if lv.qty},
            )
        orders: dict[int, _Open] = {}
        for o in engine.orders.values():
            m = engine.markets[o.market]
            orders[o.oid] = _Open(o.market, o.side, o.price * m.tick_size, o.remaining * m.lot_size, o.account)
        self._orders = orders
        self.seq = engine.seq
        self._advance(engine.ts, set())
        self._loaded = True

    def seed_trades(self, rows: Iterable[tuple[int, str, int, int, int, str]]) -> None:
        """Past trades, oldest first: (trade id, market symbol, price, qty, ts, taker side 'buy'/'sell').
        Rows with an id not above the last trade already known are skipped."""
        for tid, symbol, price, qty, ts, side in rows:
            if tid <= self._last_trade_id:
                continue
            if side not in SIDE_NAMES.values():
                raise ValueError(f"trade {tid}: taker side must be 'buy' or 'sell', not {side!r}")
            st = self._state(symbol)
            notional = price * qty // 10 ** self._markets_ref[st.index].base.decimals
            self._advance(ts, set())
            st.trades.append({"id": tid, "price": price, "qty": qty, "quote_qty": notional, "side": side, "ts": ts})
            self._record(st, price, qty, notional, ts)
            self._last_trade_id = tid

    def apply(self, seq: int, ts: int, events: list[Event]) -> Update:
        """Apply the events of the command ``seq`` (exactly one more than the last), stamped ``ts``."""
        if not self._loaded:
            raise RuntimeError("MarketData.load() must be called before apply()")
        if seq != self.seq + 1:
            raise ValueError(f"market data at seq {self.seq} cannot apply seq {seq}")
        self.seq = seq
        up = Update(seq, {}, [], set(), set(), {})
        if ts > self._latest:
            self._advance(ts, up.tickers)
        c = _Command(up, ts)
        handlers = self._handlers
        for e in events:
            handler = handlers.get(e[0])
            if handler is not None:
                handler(c, e)
        self._settle_pending(c)
        if c.touched:
            self._publish_depth(c.touched, up)
        return up

    def _tell(self, c: _Command, account: int, msg: dict[str, Any]) -> None:
        """A private message for ``account`` (the exchange's own accounts, 0 and below, get none)."""
        if account > 0:
            c.up.accounts.setdefault(account, []).append(msg)

    def _settle_pending(self, c: _Command) -> None:
        """The order that may come to rest (a new, re-queued or triggered one) rests with what is left."""
        if c.p_rec is not None and c.p_rests:
            self._rest(c.p_oid, c.p_rec, c.touched)

    def _on_balance(self, c: _Command, e: Event) -> None:
        bal = cast(E.Balance, e)
        a = bal.asset
        assets = self._asset_symbols
        self._tell(c, bal.account, {
            "type": "balance", "asset": (assets[a] if a < len(assets) else "") or self._asset_symbol(a),
            "d_available": bal.d_available, "d_locked": bal.d_locked,
            "cause": _CAUSE_NAMES.get(bal.cause, str(bal.cause)),
        })

    def _on_trade(self, c: _Command, e: Event) -> None:
        t = cast(E.Trade, e)
        tid, price, qty, notional, ts = t.trade_id, t.price, t.qty, t.notional, c.ts
        mk = self._orders.get(t.maker_oid)
        if mk is not None:
            mk.remaining -= qty
            self._level(mk.market, mk.side, mk.price, -qty, c.touched)
        if c.p_rec is not None and t.taker_oid == c.p_oid:
            c.p_rec.remaining -= qty
        st = self._m[t.market]
        sym = st.symbol
        row = {"id": tid, "price": price, "qty": qty, "quote_qty": notional, "side": SIDE_NAMES[t.taker_side],
               "ts": ts}
        st.trades.append(row)
        c.up.trades.append({**row, "market": sym})
        self._record(st, price, qty, notional, ts)
        self._last_trade_id = tid
        c.up.tickers.add(sym)
        c.up.candles.add(sym)
        buy = t.taker_side == BUY
        for acct, oid, role, side, fee, fee_asset in (
            (t.taker_account, t.taker_oid, "taker", t.taker_side, t.taker_fee,
             st.base if buy and not st.perp else st.quote),
            (t.maker_account, t.maker_oid, "maker", 1 - t.taker_side, t.maker_fee,
             st.quote if buy or st.perp else st.base),
        ):
            self._tell(c, acct, {
                "type": "fill", "role": role, "trade_id": tid, "order_id": oid, "market": sym,
                "side": SIDE_NAMES[side], "price": price, "qty": qty, "quote_qty": notional,
                "fee": fee, "fee_asset": fee_asset, "ts": ts,
            })

    def _on_done(self, c: _Command, e: Event) -> None:
        done = cast(E.OrderDone, e)
        oid = done.oid
        rec = self._orders.pop(oid, None)
        if rec is not None:
            if rec.remaining:
                self._level(rec.market, rec.side, rec.price, -rec.remaining, c.touched)
        elif c.p_rec is not None and oid == c.p_oid:
            rec, c.p_rec = c.p_rec, None
        if rec is not None:
            self._tell(c, rec.account, {
                "type": "order", "event": STATUS_NAMES.get(done.status, str(done.status)), "order_id": oid,
                "market": self._m[rec.market].symbol, "remaining": done.remaining, "reason": done.reason,
                "ts": c.ts,
            })

    def _on_new(self, c: _Command, e: Event) -> None:
        self._settle_pending(c)
        o = cast(E.OrderNew, e)
        c.p_oid = o.oid
        c.p_rec = _Open(o.market, o.side, o.price, o.qty, o.account)
        c.p_rests = o.otype in _RESTING_TYPES
        self._tell(c, o.account, {
            "type": "order", "event": "new", "order_id": o.oid, "client_id": o.client_id,
            "market": self._m[o.market].symbol, "side": SIDE_NAMES[o.side],
            "order_type": TYPE_NAMES.get(o.otype, str(o.otype)), "price": o.price, "qty": o.qty,
            "quote_qty": o.quote_qty, "stp": STP_NAMES.get(o.stp, str(o.stp)), "ts": c.ts,
        })

    def _on_amended(self, c: _Command, e: Event) -> None:
        am = cast(E.OrderAmended, e)
        oid, remaining = am.oid, am.remaining
        rec = self._orders.get(oid)
        if rec is None:
            return
        if am.requeued:
            # off its level now; back as a taker that may trade, then rest at the new price
            self._settle_pending(c)
            del self._orders[oid]
            if rec.remaining:
                self._level(rec.market, rec.side, rec.price, -rec.remaining, c.touched)
            c.p_oid, c.p_rests = oid, True
            c.p_rec = _Open(rec.market, rec.side, am.price, remaining, rec.account)
        elif remaining != rec.remaining:
            self._level(rec.market, rec.side, rec.price, remaining - rec.remaining, c.touched)
            rec.remaining = remaining
        self._tell(c, rec.account, {
            "type": "order", "event": "amended", "order_id": oid, "market": self._m[rec.market].symbol,
            "price": am.price, "qty": am.qty, "remaining": remaining, "requeued": am.requeued, "ts": c.ts,
        })

    def _on_triggered(self, c: _Command, e: Event) -> None:
        # a stop order becomes a limit order here: it may trade, then rest like a new one
        tr = cast(E.OrderTriggered, e)
        self._settle_pending(c)
        c.p_oid, c.p_rests = tr.oid, True
        c.p_rec = _Open(tr.market, tr.side, tr.price, tr.remaining, tr.account)
        self._tell(c, tr.account, {
            "type": "order", "event": "triggered", "order_id": tr.oid, "market": self._m[tr.market].symbol,
            "price": tr.price, "remaining": tr.remaining, "ts": c.ts,
        })

    def _on_market_listed(self, c: _Command, e: Event) -> None:
        listed = cast(E.MarketListed, e)
        self._add_market(listed.market, listed.symbol)

    def _on_asset_listed(self, c: _Command, e: Event) -> None:
        asset = cast(E.AssetListed, e)
        assets = self._asset_symbols
        while len(assets) <= asset.asset:
            assets.append("")
        assets[asset.asset] = asset.symbol

    # ------------------------------------------------------------------ queries

    def markets(self) -> list[str]:
        """The symbols known, in listing order."""
        return [st.symbol for st in self._m]

    def depth(self, market: str, limit: int = 100) -> dict[str, Any]:
        """The aggregated book: ``[price, total qty]`` per level, best first, at most ``limit`` a side."""
        st = self._state(market)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        bids, asks = st.sides
        return {
            "market": st.symbol,
            "seq": self.seq,
            "bids": [[p, bids[p]] for p in nlargest(limit, bids)],
            "asks": [[p, asks[p]] for p in nsmallest(limit, asks)],
        }

    def trades(self, market: str, limit: int = 100) -> list[dict[str, Any]]:
        """Recent trades, newest first: id, price, qty, quote_qty, side (the taker's), ts."""
        st = self._state(market)
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return [dict(t) for t in islice(reversed(st.trades), limit)]

    def ticker(self, market: str) -> dict[str, Any]:
        """24 h rolling statistics up to the latest ts seen, and the best bid and ask.

        With no trade in the window open, high, low and change are None (last is the last trade
        ever, None if there was none); an empty side gives None for its price and quantity."""
        st = self._state(market)
        buckets = st.r_buckets
        if buckets and not st.r_hl_ok:
            st.r_high = max(c[2] for c in buckets)
            st.r_low = min(c[3] for c in buckets)
            st.r_hl_ok = True
        last = st.last or None
        if buckets:
            open_: int | None = buckets[0][1]
            high: int | None = st.r_high
            low: int | None = st.r_low
            change: int | None = st.last - buckets[0][1]
        else:
            open_ = high = low = change = None
        bid = st.best_price(0)
        ask = st.best_price(1)
        return {
            "market": st.symbol,
            "open": open_,
            "high": high,
            "low": low,
            "last": last,
            "volume": st.r_volume,
            "quote_volume": st.r_quote,
            "change": change,
            "trades": st.r_count,
            "bid": bid or None,
            "bid_qty": st.sides[0][bid] if bid else None,
            "ask": ask or None,
            "ask_qty": st.sides[1][ask] if ask else None,
            "seq": self.seq,
            "ts": self._latest,
        }

    def candles(
        self,
        market: str,
        interval: str,
        limit: int = 500,
        start_ts: int | None = None,
        end_ts: int | None = None,
    ) -> list[dict[str, int]]:
        """Candles oldest first, the forming one included; only buckets that had trades.

        The candles whose bucket overlaps [start_ts, end_ts]; then the first ``limit`` of them
        when ``start_ts`` is given, else the last ``limit``."""
        st = self._state(market)
        i = _INTERVAL_INDEX.get(interval)
        if i is None:
            raise ValueError(f"unknown interval {interval!r}; one of {', '.join(INTERVALS)}")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        iv = _INTERVAL_NS[i]
        rows: Iterable[list[int]] = st.candles[i]
        if start_ts is not None:
            lo = start_ts
            rows = (c for c in rows if c[0] + iv > lo)
        if end_ts is not None:
            hi = end_ts
            rows = (c for c in rows if c[0] <= hi)
        picked = list(islice(rows, limit)) if start_ts is not None else list(rows)[-limit:]
        return [
            {"t": c[0], "open": c[1], "high": c[2], "low": c[3], "close": c[4], "volume": c[5],
             "quote_volume": c[6], "trades": c[7]}
            for c in picked
        ]

    # ------------------------------------------------------------------ inside

    def _state(self, market: str) -> _Market:
        st = self._by_symbol.get(market)
        if st is None:
            raise KeyError(f"unknown market {market!r}")
        return st

    def _add_market(self, index: int, symbol: str) -> None:
        while len(self._m) <= index:
            i = len(self._m)
            sym = symbol if i == index else self._markets_ref[i].symbol
            st = _Market(i, sym, self._trades_kept)
            self._m.append(st)
            self._by_symbol[sym] = st

    def _asset_symbol(self, index: int) -> str:
        """An asset not listed by an event seen here: from the engine's list."""
        symbol = self._assets_ref[index].symbol
        while len(self._asset_symbols) <= index:
            self._asset_symbols.append("")
        self._asset_symbols[index] = symbol
        return symbol

    def _level(self, mi: int, side: int, price: int, dq: int, touched: dict[tuple[int, int, int], None]) -> None:
        levels = self._m[mi].sides[side]
        q = levels.get(price, 0) + dq
        if q > 0:
            levels[price] = q
        else:
            levels.pop(price, None)
        touched[(mi, side, price)] = None

    def _rest(self, oid: int, rec: _Open, touched: dict[tuple[int, int, int], None]) -> None:
        if rec.remaining > 0:
            self._orders[oid] = rec
            self._level(rec.market, rec.side, rec.price, rec.remaining, touched)

    def _publish_depth(self, touched: dict[tuple[int, int, int], None], up: Update) -> None:
        """The changed levels with their new totals; tickers whose best bid or ask may have moved."""
        markets = self._m
        depth = up.depth
        for mi, side, price in touched:
            st = markets[mi]
            q = st.sides[side].get(price, 0)
            d = depth.get(st.symbol)
            if d is None:
                d = depth[st.symbol] = {"bids": [], "asks": []}
            d["bids" if side == BUY else "asks"].append([price, q])
            best = st.best
            b = best[side]
            if b == _DIRTY:
                up.tickers.add(st.symbol)
            elif q:
                if b == _EMPTY or (price > b if side == BUY else price < b):
                    best[side] = price
                    up.tickers.add(st.symbol)
                elif price == b:
                    up.tickers.add(st.symbol)
            elif price == b:
                best[side] = _DIRTY
                up.tickers.add(st.symbol)

    def _advance(self, ts: int, changed: set[str]) -> None:
        """Move the latest ts forward; drop the buckets that left the 24 h windows."""
        if ts <= self._latest:
            return
        self._latest = ts
        if ts < self._next_expiry:
            return
        horizon = ts - DAY  # a bucket stays while it ends after the horizon
        nxt = _NEVER
        for st in self._m:
            buckets = st.r_buckets
            if buckets and buckets[0][0] + MINUTE <= horizon:
                while buckets and buckets[0][0] + MINUTE <= horizon:
                    c = buckets.popleft()
                    st.r_volume -= c[5]
                    st.r_quote -= c[6]
                    st.r_count -= c[7]
                    if c[2] >= st.r_high or c[3] <= st.r_low:
                        st.r_hl_ok = False
                changed.add(st.symbol)
            if buckets and buckets[0][0] + MINUTE + DAY < nxt:
                nxt = buckets[0][0] + MINUTE + DAY
        self._next_expiry = nxt

    def _record(self, st: _Market, price: int, qty: int, notional: int, ts: int) -> None:
        """Count a trade in the candles and the rolling window. A trade stamped before the market's
        last one is counted at the last one's time, so candles only ever grow at the end."""
        if ts < st.last_ts:
            ts = st.last_ts
        else:
            st.last_ts = ts
        st.last = price
        minute = ts - ts % MINUTE
        in_window = minute + MINUTE + DAY > self._latest
        for iv, dq in zip(_INTERVAL_NS, st.candles, strict=True):
            t = ts - ts % iv
            if dq and dq[-1][0] == t:
                c = dq[-1]
                c[2] = max(c[2], price)
                c[3] = min(c[3], price)
                c[4] = price
                c[5] += qty
                c[6] += notional
                c[7] += 1
            else:
                c = [t, price, price, price, price, qty, notional, 1]
                dq.append(c)
                if iv == MINUTE and in_window:
                    if not st.r_buckets and t + MINUTE + DAY < self._next_expiry:
                        self._next_expiry = t + MINUTE + DAY
                    st.r_buckets.append(c)
        if in_window:
            st.r_volume += qty
            st.r_quote += notional
            st.r_count += 1
            if st.r_hl_ok:
                st.r_high = max(st.r_high, price)
                st.r_low = min(st.r_low, price)
