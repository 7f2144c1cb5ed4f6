"""Market data from engine events: the depth equals the engine's books after every command of random
sequences, and the trades, tickers, candles and private updates agree with hand-computed values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpg.api.marketdata import DAY, INTERVALS, MINUTE, MarketData, Update
from dpg.core import events as E
from dpg.core.commands import AmendOrder, CancelAll, CancelOrder, Credit, OpenAccount, PlaceOrder, Transfer
from dpg.core.engine import Engine
from dpg.core.genesis import GENESIS
from dpg.core.model import STP, OrderType, Side
from tests.core.helpers import LOT, TICK, Desk

M = "BTC/USDT"
MARKETS = ["BTC/USDT", "ETH/USDT", "BTC/USD"]
ETH_LOT = 10**14
SECOND = 10**9
T0 = 20_000 * DAY  # a day boundary (2024-10-04 00:00 UTC)


class Feed:
    """An engine with the genesis markets and market data fed from the very first command; ``ts``
    advances by one microsecond a command unless given."""

    def __init__(self, trades_kept: int = 1000) -> None:
        self.engine = Engine()
        self.md = MarketData(self.engine.markets, self.engine.assets, trades_kept=trades_kept)
        self.md.load(self.engine)
        self.seq = 0
        self.ts = T0
        self.updates: list[Update] = []
        for cmd in GENESIS:
            self.apply(cmd)

    def apply(self, cmd: Any, ts: int | None = None) -> tuple[list[E.Event], Update]:
        self.seq += 1
        self.ts = self.ts + 1000 if ts is None else ts
        ev = self.engine.apply(cmd, self.seq, self.ts)
        up = self.md.apply(self.seq, self.ts, ev)
        self.updates.append(up)
        return ev, up

    def fund(self, account: int, asset: str, amount: int, ts: int | None = None) -> Update:
        if not self.engine.has_account(account):
            self.apply(OpenAccount(account), ts)
        ev, up = self.apply(Credit(account, asset, amount, f"fund-{account}-{asset}-{self.seq}"), ts)
        assert ev[0][0] == E.BALANCE
        return up

    def order(self, account: int, side: str, price_ticks: int, lots: int, ts: int | None = None,
              otype: OrderType = OrderType.LIMIT, market: str = M) -> tuple[list[E.Event], Update]:
        s = Side.BUY if side == "buy" else Side.SELL
        return self.apply(PlaceOrder(account, market, s, otype, price_ticks * TICK, lots * LOT), ts)


def funded_feed(trades_kept: int = 1000) -> Feed:
    f = Feed(trades_kept)
    for a in (1, 2, 3, 4):
        f.fund(a, "USDT", 10**12)
        f.fund(a, "USD", 10**12)
        f.fund(a, "BTC", 10**9)
        f.fund(a, "ETH", 10**20)
    return f


def engine_depth(engine: Engine, i: int) -> tuple[list[list[int]], list[list[int]]]:
    m = engine.markets[i]
    book = engine.books[i]
    bids = sorted(([p * m.tick_size, lv.qty * m.lot_size] for p, lv in book.bids.levels.items()), reverse=True)
    asks = sorted([p * m.tick_size, lv.qty * m.lot_size] for p, lv in book.asks.levels.items())
    return bids, asks


def md_depth(md: MarketData, market: str) -> tuple[list[list[int]], list[list[int]]]:
    d = md.depth(market, limit=10**6)
    return d["bids"], d["asks"]


def assert_same_depth(md: MarketData, engine: Engine) -> None:
    for i, m in enumerate(engine.markets):
        assert md_depth(md, m.symbol) == engine_depth(engine, i), m.symbol
    want = {o.oid: o.remaining * engine.markets[o.market].lot_size for o in engine.orders.values()}
    assert {oid: rec.remaining for oid, rec in md._orders.items()} == want


# ---------------------------------------------------------------- the property test


accounts = st.integers(1, 4)


@st.composite
def commands(draw: Any) -> Any:
    """As in tests/core/test_properties.py."""
    kind = draw(st.sampled_from(["limit"] * 6 + ["ioc", "fok", "post", "mkt", "mktq", "cancel", "cancel_all",
                                 "amend", "amend", "transfer", "credit"]))
    acct = draw(accounts)
    market = draw(st.sampled_from(MARKETS))
    lot = ETH_LOT if market.startswith("ETH") else LOT
    side = draw(st.sampled_from([Side.BUY, Side.SELL]))
    price = draw(st.integers(2_000_000, 2_000_040)) * TICK  # ticks around 20,000.00
    qty = draw(st.integers(1, 40)) * lot
    stp = draw(st.sampled_from(list(STP)))
    if kind in ("limit", "ioc", "fok", "post"):
        otype = {"limit": OrderType.LIMIT, "ioc": OrderType.IOC, "fok": OrderType.FOK,
                 "post": OrderType.POST_ONLY}[kind]
        return PlaceOrder(acct, market, side, otype, price, qty, stp=stp)
    if kind == "mkt":
        return PlaceOrder(acct, market, side, OrderType.MARKET, 0, qty, stp=stp)
    if kind == "mktq":
        return PlaceOrder(acct, market, Side.BUY, OrderType.MARKET, 0, 0, quote_qty=draw(st.integers(1, 10**9)) * 10,
                          stp=stp)
    if kind == "cancel":
        return CancelOrder(acct, market, draw(st.integers(1, 80)))
    if kind == "cancel_all":
        return CancelAll(acct, market)
    if kind == "amend":
        return AmendOrder(acct, market, draw(st.integers(1, 80)), price=draw(st.sampled_from([0, price])),
                          qty=draw(st.sampled_from([0, qty])))
    if kind == "transfer":
        asset = draw(st.sampled_from(["BTC", "USDT", "ETH"]))
        return Transfer(acct, draw(accounts), asset, draw(st.integers(1, 10**9)))
    return Credit(acct, draw(st.sampled_from(["BTC", "USDT", "ETH", "USD"])), draw(st.integers(1, 10**20)),
                  f"ref-{draw(st.integers(0, 10**9))}")


steps = st.sampled_from([0, 1, SECOND, 59 * SECOND, MINUTE, 3600 * SECOND, 6 * 3600 * SECOND, DAY])

Trade = tuple[int, int, int, int, int]  # market, price, qty, notional, ts


def want_ticker(trades: list[Trade], latest: int) -> dict[str, Any]:
    """The rolling window as documented: the one-minute buckets that end after latest - 24 h."""
    window = [t for t in trades if t[4] - t[4] % MINUTE + MINUTE > latest - DAY]
    prices = [t[1] for t in window]
    return {
        "open": prices[0] if window else None,
        "high": max(prices) if window else None,
        "low": min(prices) if window else None,
        "last": trades[-1][1] if trades else None,
        "volume": sum(t[2] for t in window),
        "quote_volume": sum(t[3] for t in window),
        "change": prices[-1] - prices[0] if window else None,
        "trades": len(window),
    }


def want_candles(trades: list[Trade], iv: int) -> list[dict[str, int]]:
    out: list[dict[str, int]] = []
    for _, p, q, n, ts in trades:
        t = ts - ts % iv
        if out and out[-1]["t"] == t:
            c = out[-1]
            c["high"], c["low"], c["close"] = max(c["high"], p), min(c["low"], p), p
            c["volume"] += q
            c["quote_volume"] += n
            c["trades"] += 1
        else:
            out.append({"t": t, "open": p, "high": p, "low": p, "close": p, "volume": q, "quote_volume": n,
                        "trades": 1})
    return out


def top(engine: Engine, i: int) -> tuple[list[int] | None, list[int] | None]:
    bids, asks = engine_depth(engine, i)
    return (bids[0] if bids else None), (asks[0] if asks else None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(commands(), steps), min_size=40, max_size=160), st.data())
def test_depth_equals_the_engine_books_after_every_command(cmds: list[tuple[Any, int]], data: Any) -> None:
    f = funded_feed()
    md, engine = f.md, f.engine
    cut = data.draw(st.integers(0, len(cmds)))
    late: MarketData | None = None  # loaded from the engine half way, then fed like ``md``
    mirror: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
    for m in md.markets():
        bids, asks = md_depth(md, m)
        mirror[m] = ({p: q for p, q in bids}, {p: q for p, q in asks})
    trades: dict[int, list[Trade]] = {i: [] for i in range(len(engine.markets))}
    owner: dict[int, int] = {}
    shown = [{k: v for k, v in md.ticker(m).items() if k not in ("seq", "ts")} for m in md.markets()]
    balances: dict[tuple[int, str], list[int]] = {}
    for up in f.updates:
        for acct, msgs in up.accounts.items():
            for msg in msgs:
                if msg["type"] == "balance":
                    b = balances.setdefault((acct, msg["asset"]), [0, 0])
                    b[0] += msg["d_available"]
                    b[1] += msg["d_locked"]
    for n, (drawn, dt) in enumerate(cmds):
        cmd = drawn
        if n == cut:
            late = MarketData(engine.markets, engine.assets)
            late.load(engine)
            assert_same_depth(late, engine)
        if isinstance(drawn, AmendOrder | CancelOrder) and engine.orders and data.draw(st.booleans()):
            o = engine.orders[data.draw(st.sampled_from(sorted(engine.orders)))]  # aim at a live order
            sym = engine.markets[o.market].symbol
            cmd = AmendOrder(o.account, sym, o.oid, drawn.price, drawn.qty) if isinstance(drawn, AmendOrder) \
                else CancelOrder(o.account, sym, o.oid)
        ev, up = f.apply(cmd, f.ts + dt)
        if late is not None:
            late.apply(f.seq, f.ts, ev)
            assert_same_depth(late, engine)
        assert up.seq == md.seq == f.seq
        assert_same_depth(md, engine)

        # the streamed deltas rebuild the same books
        for sym, changes in up.depth.items():
            for pos, key in enumerate(("bids", "asks")):
                levels = mirror[sym][pos]
                for price, qty in changes[key]:
                    if qty:
                        levels[price] = qty
                    else:
                        levels.pop(price, None)
        for i, m in enumerate(engine.markets):
            bids, asks = mirror[m.symbol]
            assert (sorted(map(list, bids.items()), reverse=True), sorted(map(list, asks.items()))) == \
                engine_depth(engine, i)

        # trades, tickers, candles against plain recomputation
        for e in ev:
            if e[0] == E.TRADE:
                trades[e[2]].append((e[2], e[3], e[4], e[5], f.ts))
            elif e[0] == E.ORDER_NEW:
                owner[e[1]] = e[2]
        assert [t["id"] for t in up.trades] == [e[1] for e in ev if e[0] == E.TRADE]
        for i, m in enumerate(engine.markets):
            tk = md.ticker(m.symbol)
            assert {k: tk[k] for k in want_ticker(trades[i], f.ts)} == want_ticker(trades[i], f.ts)
            bid, ask = top(engine, i)
            assert (tk["bid"], tk["bid_qty"]) == (tuple(bid) if bid else (None, None))
            assert (tk["ask"], tk["ask_qty"]) == (tuple(ask) if ask else (None, None))
            now = {k: v for k, v in tk.items() if k not in ("seq", "ts")}
            if now != shown[i]:
                assert m.symbol in up.tickers, (shown[i], now)
            shown[i] = now
            if any(e[0] == E.TRADE and e[2] == i for e in ev):
                assert m.symbol in up.tickers and m.symbol in up.candles
            if trades[i]:
                assert md.trades(m.symbol, 1)[0]["price"] == trades[i][-1][1]
            for name, iv in INTERVALS.items():
                assert md.candles(m.symbol, name, limit=1000) == want_candles(trades[i], iv)

        # private updates: balances add up, every fill and finished order reaches its account
        for acct, msgs in up.accounts.items():
            assert acct > 0
            for msg in msgs:
                if msg["type"] == "balance":
                    b = balances.setdefault((acct, msg["asset"]), [0, 0])
                    b[0] += msg["d_available"]
                    b[1] += msg["d_locked"]
        for e in ev:
            if e[0] == E.TRADE:
                for acct, oid, role in ((e[8], e[6], "taker"), (e[9], e[7], "maker")):
                    assert any(x["type"] == "fill" and x["trade_id"] == e[1] and x["order_id"] == oid
                               and x["role"] == role for x in up.accounts[acct])
            elif e[0] == E.ORDER_DONE:
                assert any(x["type"] == "order" and x["order_id"] == e[1] and x["event"] in ("filled", "canceled",
                           "expired") for x in up.accounts[owner[e[1]]])
    for a in (1, 2, 3, 4):
        for asset in ("BTC", "ETH", "USDT", "USD"):
            assert tuple(balances.get((a, asset), [0, 0])) == engine.balance(a, asset)


# ---------------------------------------------------------------- hand-computed scenarios


P20000 = 2_000_000  # ticks of 20,000.00 USDT
PRICE_UNITS = TICK  # units per tick
TEN = 10 * LOT  # 0.001 BTC in units


def test_trades_newest_first_and_bounded() -> None:
    f = funded_feed(trades_kept=3)
    f.order(1, "sell", P20000, 50)
    ids = []
    for _ in range(5):
        _, up = f.order(2, "buy", P20000, 10)
        (trade,) = up.trades
        assert trade["market"] == M
        ids.append(trade["id"])
    got = f.md.trades(M)
    assert [t["id"] for t in got] == ids[::-1][:3]
    assert got[0] == {"id": ids[-1], "price": P20000 * TICK, "qty": TEN, "quote_qty": 20_000_000, "side": "buy",
                      "ts": f.ts}
    assert [t["id"] for t in f.md.trades(M, limit=2)] == ids[::-1][:2]
    assert f.md.trades("ETH/USDT") == []
    with pytest.raises(KeyError):
        f.md.trades("DOGE/USDT")


def test_ticker_hand_computed() -> None:
    f = funded_feed()
    f.order(1, "sell", P20000, 30, ts=T0 + SECOND)
    f.order(1, "sell", P20000 + 1000, 20, ts=T0 + 2 * SECOND)  # 20,010.00
    _, up = f.order(2, "buy", P20000, 10, ts=T0 + 10 * SECOND)  # 0.001 @ 20,000.00
    assert up.tickers == up.candles == {M}
    _, up = f.order(2, "buy", P20000 + 1000, 30, ts=T0 + 70 * SECOND)  # 0.002 @ 20,000.00, 0.001 @ 20,010.00
    assert len(up.trades) == 2
    _, up = f.order(2, "buy", P20000 - 1000, 10, ts=T0 + 80 * SECOND)  # rests at 19,990.00: a new best bid
    assert up.tickers == {M} and up.candles == set()
    p, p_hi, p_bid = 20_000 * 10**6, 20_010 * 10**6, 19_990 * 10**6
    want = {
        "market": M, "open": p, "high": p_hi, "low": p, "last": p_hi, "volume": 4 * TEN,
        "quote_volume": 20_000_000 + 40_000_000 + 20_010_000, "change": 10 * 10**6, "trades": 3,
        "bid": p_bid, "bid_qty": TEN, "ask": p_hi, "ask_qty": TEN, "seq": f.seq, "ts": T0 + 80 * SECOND,
    }
    assert f.md.ticker(M) == want
    _, up = f.order(3, "buy", P20000 - 2000, 10)  # below the best bid: the ticker stays
    assert up.tickers == set()

    # one minute short of the first bucket leaving the window
    up = f.fund(4, "USD", 1, ts=T0 + DAY + MINUTE - 1)
    assert up.tickers == set()
    assert f.md.ticker(M)["trades"] == 3
    up = f.fund(4, "USD", 1, ts=T0 + DAY + MINUTE)  # the bucket at T0 leaves: the first trade drops out
    assert up.tickers == {M}
    tk = f.md.ticker(M)
    assert (tk["open"], tk["high"], tk["low"], tk["last"], tk["change"]) == (p, p_hi, p, p_hi, 10 * 10**6)
    assert (tk["volume"], tk["quote_volume"], tk["trades"]) == (3 * TEN, 60_010_000, 2)
    up = f.fund(4, "USD", 1, ts=T0 + DAY + 2 * MINUTE)
    assert up.tickers == {M}
    tk = f.md.ticker(M)
    assert (tk["open"], tk["high"], tk["low"], tk["last"], tk["change"]) == (None, None, None, p_hi, None)
    assert (tk["volume"], tk["quote_volume"], tk["trades"]) == (0, 0, 0)
    assert (tk["bid"], tk["ask"]) == (p_bid, p_hi)
    empty = f.md.ticker("ETH/USD")
    assert (empty["last"], empty["bid"], empty["bid_qty"], empty["ask"], empty["volume"]) == (None, None, None, None, 0)


def trade_at(f: Feed, ts: int, price_ticks: int, lots: int = 10) -> None:
    f.order(1, "sell", price_ticks, lots, ts=ts - 1)
    _, up = f.order(2, "buy", price_ticks, lots, ts=ts)
    assert [t["ts"] for t in up.trades] == [ts]


def test_candles_aligned_with_ohlcv_across_bucket_boundaries() -> None:
    f = funded_feed()
    trade_at(f, T0 + 59 * SECOND, P20000)  # 20,000.00
    trade_at(f, T0 + 60 * SECOND, P20000 + 500)  # 20,005.00: the next minute
    trade_at(f, T0 + 299 * SECOND, P20000 - 500)  # 19,995.00: still the first 5 minutes
    trade_at(f, T0 + 300 * SECOND, P20000 + 100)  # 20,001.00: the next 5 minutes
    trade_at(f, T0 + 3601 * SECOND, P20000 + 200)  # 20,002.00: the next hour
    u = 10**6  # units of one USDT

    def candle(t: int, o: int, h: int, lo: int, c: int, n: int, quote: int) -> dict[str, int]:
        return {"t": t, "open": o * u, "high": h * u, "low": lo * u, "close": c * u, "volume": n * TEN,
                "quote_volume": quote, "trades": n}

    one = [
        candle(T0, 20_000, 20_000, 20_000, 20_000, 1, 20_000_000),
        candle(T0 + MINUTE, 20_005, 20_005, 20_005, 20_005, 1, 20_005_000),
        candle(T0 + 4 * MINUTE, 19_995, 19_995, 19_995, 19_995, 1, 19_995_000),
        candle(T0 + 5 * MINUTE, 20_001, 20_001, 20_001, 20_001, 1, 20_001_000),
        candle(T0 + 60 * MINUTE, 20_002, 20_002, 20_002, 20_002, 1, 20_002_000),
    ]
    assert f.md.candles(M, "1m") == one
    assert f.md.candles(M, "5m") == [
        candle(T0, 20_000, 20_005, 19_995, 19_995, 3, 60_000_000),
        candle(T0 + 5 * MINUTE, 20_001, 20_001, 20_001, 20_001, 1, 20_001_000),
        candle(T0 + 60 * MINUTE, 20_002, 20_002, 20_002, 20_002, 1, 20_002_000),
    ]
    assert f.md.candles(M, "15m") == [
        candle(T0, 20_000, 20_005, 19_995, 20_001, 4, 80_001_000),
        candle(T0 + 60 * MINUTE, 20_002, 20_002, 20_002, 20_002, 1, 20_002_000),
    ]
    assert f.md.candles(M, "1h") == f.md.candles(M, "15m")
    assert f.md.candles(M, "4h") == f.md.candles(M, "1d") == [
        candle(T0, 20_000, 20_005, 19_995, 20_002, 5, 100_003_000),
    ]
    # ranges: the candles whose bucket overlaps [start, end]; first ``limit`` from a start, else the last
    assert f.md.candles(M, "1m", start_ts=T0 + 30 * SECOND, end_ts=T0 + 4 * MINUTE) == one[:3]
    assert f.md.candles(M, "1m", start_ts=T0 + MINUTE, end_ts=T0 + 5 * MINUTE) == one[1:4]
    assert f.md.candles(M, "1m", start_ts=T0 + MINUTE, limit=2) == one[1:3]
    assert f.md.candles(M, "1m", limit=2) == one[3:]
    assert f.md.candles(M, "1m", end_ts=T0 + 5 * MINUTE - 1, limit=2) == one[1:3]
    assert f.md.candles("ETH/USDT", "1h") == []
    with pytest.raises(ValueError, match="interval"):
        f.md.candles(M, "2m")


def test_candles_keep_at_most_a_thousand() -> None:
    f = funded_feed()
    f.order(1, "sell", P20000, 1200 * 10)
    for k in range(1200):
        f.order(2, "buy", P20000, 10, ts=T0 + k * MINUTE)
    got = f.md.candles(M, "1m", limit=5000)
    assert len(got) == 1000
    assert got[0]["t"] == T0 + 200 * MINUTE and got[-1]["t"] == T0 + 1199 * MINUTE
    assert f.md.ticker(M)["trades"] == 1200  # the rolling day keeps every minute of it


def test_apply_rejects_gaps_and_repeats() -> None:
    f = funded_feed()
    md = f.md
    with pytest.raises(ValueError, match="seq"):
        md.apply(f.seq + 2, f.ts, [])
    with pytest.raises(ValueError, match="seq"):
        md.apply(f.seq, f.ts, [])
    assert md.seq == f.seq
    f.order(1, "sell", P20000, 10)  # still in step
    assert md.seq == f.seq
    fresh = MarketData(f.engine.markets, f.engine.assets)
    with pytest.raises(RuntimeError, match="load"):
        fresh.apply(1, 0, [])


def test_load_from_an_engine_with_resting_orders_then_continue() -> None:
    d = Desk()
    for a in (1, 2, 3):
        d.fund(a, "USDT", 10**12)
        d.fund(a, "BTC", 10**9)
    d.order(1, "sell", P20000, 30)  # oid 1
    d.order(1, "sell", P20000, 20)  # oid 2
    d.order(3, "sell", P20000 + 100, 50)  # oid 3
    d.order(2, "buy", P20000, 10)  # takes 10 of oid 1
    d.order(2, "buy", P20000 - 100, 40)  # oid 5 rests
    d.apply(AmendOrder(2, M, 5, qty=30 * LOT))  # in place

    md = MarketData(d.engine.markets, d.engine.assets)
    md.load(d.engine)
    assert md.seq == d.seq
    assert md.depth(M) == {
        "market": M, "seq": d.seq,
        "bids": [[(P20000 - 100) * TICK, 30 * LOT]],
        "asks": [[P20000 * TICK, 40 * LOT], [(P20000 + 100) * TICK, 50 * LOT]],
    }
    assert md.depth(M, limit=1)["asks"] == [[P20000 * TICK, 40 * LOT]]
    tk = md.ticker(M)
    assert (tk["bid"], tk["bid_qty"], tk["ask"], tk["ask_qty"]) == (
        (P20000 - 100) * TICK, 30 * LOT, P20000 * TICK, 40 * LOT)

    def step(cmd: Any) -> Update:
        ev = d.apply(cmd)
        up = md.apply(d.seq, d.seq * 1000, ev)
        assert_same_depth(md, d.engine)
        return up

    up = step(PlaceOrder(2, M, Side.BUY, OrderType.LIMIT, P20000 * TICK, 25 * LOT))  # fills oid 1, part of 2
    assert up.depth == {M: {"bids": [], "asks": [[P20000 * TICK, 15 * LOT]]}}
    up = step(CancelOrder(1, M, 2))
    assert up.depth == {M: {"bids": [], "asks": [[P20000 * TICK, 0]]}}
    assert up.tickers == {M}
    up = step(AmendOrder(3, M, 3, qty=20 * LOT))  # in place, 50 -> 20
    assert up.depth == {M: {"bids": [], "asks": [[(P20000 + 100) * TICK, 20 * LOT]]}}
    up = step(AmendOrder(2, M, 5, price=(P20000 + 100) * TICK))  # re-queued across: takes all of oid 3
    assert up.depth == {M: {"bids": [[(P20000 - 100) * TICK, 0], [(P20000 + 100) * TICK, 10 * LOT]],
                            "asks": [[(P20000 + 100) * TICK, 0]]}}
    step(CancelAll(2, M))
    assert md.depth(M)["bids"] == md.depth(M)["asks"] == []
    with pytest.raises(ValueError, match="limit"):
        md.depth(M, limit=0)


def test_private_updates() -> None:
    f = funded_feed()
    _, up = f.order(1, "sell", P20000, 30)
    maker = f.engine.next_order_id - 1
    assert up.accounts == {1: [
        {"type": "order", "event": "new", "order_id": maker, "client_id": "", "market": M, "side": "sell",
         "order_type": "limit", "price": P20000 * TICK, "qty": 30 * LOT, "quote_qty": 0, "stp": "expire_taker",
         "ts": f.ts},
        {"type": "balance", "asset": "BTC", "d_available": -30 * LOT, "d_locked": 30 * LOT, "cause": "lock"},
    ]}
    ev, up = f.apply(PlaceOrder(2, M, Side.BUY, OrderType.MARKET, 0, 30 * LOT))
    taker = maker + 1
    (trade,) = [e for e in ev if e[0] == E.TRADE]
    notional = 60_000_000  # 0.003 BTC at 20,000.00
    fill = {"trade_id": trade[1], "market": M, "price": P20000 * TICK, "qty": 30 * LOT, "quote_qty": notional,
            "ts": f.ts}
    fills1 = [x for x in up.accounts[1] if x["type"] == "fill"]
    fills2 = [x for x in up.accounts[2] if x["type"] == "fill"]
    assert fills1 == [{"type": "fill", "role": "maker", "order_id": maker, "side": "sell",
                       "fee": notional * 800 // 10**6, "fee_asset": "USDT", **fill}]
    assert fills2 == [{"type": "fill", "role": "taker", "order_id": taker, "side": "buy",
                       "fee": 30 * LOT * 1000 // 10**6, "fee_asset": "BTC", **fill}]
    done1 = [x for x in up.accounts[1] if x["type"] == "order"]
    assert done1 == [{"type": "order", "event": "filled", "order_id": maker, "market": M, "remaining": 0,
                      "reason": "", "ts": f.ts}]
    done2 = [x for x in up.accounts[2] if x["type"] == "order" and x["event"] != "new"]
    assert done2 == [{"type": "order", "event": "filled", "order_id": taker, "market": M, "remaining": 0,
                      "reason": "", "ts": f.ts}]
    assert set(up.accounts) == {1, 2}  # the fee accounts (< 0) get nothing
    _, up = f.order(3, "buy", P20000 - 100, 10)
    _, up = f.apply(AmendOrder(3, M, taker + 1, qty=5 * LOT))
    assert up.accounts[3][-1] == {"type": "order", "event": "amended", "order_id": taker + 1, "market": M,
                                  "price": (P20000 - 100) * TICK, "qty": 5 * LOT, "remaining": 5 * LOT,
                                  "requeued": False, "ts": f.ts}
    _, up = f.apply(CancelOrder(3, M, taker + 1))
    assert up.accounts[3][-1] == {"type": "order", "event": "canceled", "order_id": taker + 1, "market": M,
                                  "remaining": 5 * LOT, "reason": "cancelled by user", "ts": f.ts}


def test_seed_trades_feed_recent_trades_tickers_and_candles() -> None:
    e = Engine()
    for cmd in GENESIS:
        e.apply(cmd, e.seq + 1, T0)
    md = MarketData(e.markets, e.assets)
    md.load(e)
    p = 20_000 * 10**6
    rows = [
        (1, M, p, TEN, T0 - DAY, "buy"),  # more than a day before the latest: not in the ticker
        (2, M, p + 10**6, TEN, T0 + 10 * SECOND, "sell"),
        (3, "ETH/USDT", 3_000 * 10**6, 10**17, T0 + 20 * SECOND, "buy"),
        (4, M, p + 3 * 10**6, 2 * TEN, T0 + 90 * SECOND, "buy"),
    ]
    md.seed_trades(rows)
    md.seed_trades(rows[1:])  # already known: skipped
    assert [t["id"] for t in md.trades(M)] == [4, 2, 1]
    assert md.trades(M)[0] == {"id": 4, "price": p + 3 * 10**6, "qty": 2 * TEN, "quote_qty": 40_006_000,
                               "side": "buy", "ts": T0 + 90 * SECOND}
    tk = md.ticker(M)
    assert (tk["open"], tk["high"], tk["low"], tk["last"], tk["volume"], tk["trades"]) == (
        p + 10**6, p + 3 * 10**6, p + 10**6, p + 3 * 10**6, 3 * TEN, 2)
    assert md.ticker("ETH/USDT")["quote_volume"] == 300 * 10**6
    assert [c["t"] for c in md.candles(M, "1m")] == [T0 - DAY, T0, T0 + MINUTE]
    assert [c["trades"] for c in md.candles(M, "1d")] == [1, 2]
    with pytest.raises(KeyError):
        md.seed_trades([(9, "XRP/USDT", 1, 1, T0, "buy")])


def test_markets_listed_later_come_from_events() -> None:
    e = Engine()
    md = MarketData(list(e.markets), list(e.assets))  # copies: the events alone must do
    md.load(e)
    for seq, cmd in enumerate(GENESIS, start=1):
        md.apply(seq, seq * 1000, e.apply(cmd, seq, seq * 1000))
    assert md.markets() == ["BTC/USDT", "ETH/USDT", "BTC/USD", "ETH/USD"]
    seq = len(GENESIS) + 1
    assert md.apply(seq, seq * 1000, e.apply(OpenAccount(1), seq, seq * 1000)).accounts == {}
    seq += 1
    up = md.apply(seq, seq * 1000, e.apply(Credit(1, "ETH", 5, "r"), seq, seq * 1000))
    assert up.accounts == {1: [{"type": "balance", "asset": "ETH", "d_available": 5, "d_locked": 0,
                                "cause": "credit"}]}
    assert md.depth("ETH/USD") == {"market": "ETH/USD", "seq": seq, "bids": [], "asks": []}


def test_seeded_trades_older_than_a_day_stay_out_of_the_ticker() -> None:
    e = Engine()
    for cmd in GENESIS:
        e.apply(cmd, e.seq + 1, T0)
    md = MarketData(e.markets, e.assets)
    md.load(e)  # the latest ts is the engine's: T0
    md.seed_trades([(7, M, 20_000 * 10**6, TEN, T0 - 2 * DAY, "sell")])
    tk = md.ticker(M)
    assert (tk["last"], tk["open"], tk["volume"], tk["trades"]) == (20_000 * 10**6, None, 0, 0)
    assert [c["t"] for c in md.candles(M, "1h")] == [T0 - 2 * DAY]
