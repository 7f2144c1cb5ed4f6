"""Property tests: conservation of funds after every command, a never-crossed book, replay and
snapshot determinism, and matching checked against a plain reference model."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpg.core import events as E
from dpg.core import state
from dpg.core.commands import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    CompleteWithdrawal,
    Credit,
    FailWithdrawal,
    HaltMarket,
    OpenAccount,
    PayStakers,
    PlaceOrder,
    RequestWithdrawal,
    SetFees,
    SetStakerShare,
    Transfer,
)
from dpg.core.engine import Engine
from dpg.core.model import FEE_ACCOUNT, INSURANCE_ACCOUNT, STP, OrderType, Side
from dpg.core.public_replay import replay
from tests.core.helpers import LOT, TICK, Desk

MARKETS = ["BTC/USDT", "ETH/USDT", "BTC/USD"]
ETH_LOT = 10**14

accounts = st.integers(1, 4)
any_accounts = st.integers(1, 6)  # 5 and 6 are not open until an OpenAccount draws them


@st.composite
def commands(draw: Any) -> Any:
    kind = draw(st.sampled_from(["limit"] * 6 + ["ioc", "fok", "post", "mkt", "mktq", "cancel", "cancel_all",
                                 "amend", "transfer", "credit", "withdraw", "withdrawn", "stop", "take_profit",
                                 "open", "fees", "halt", "share", "pay_stakers"]))
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
        return CancelOrder(acct, market, draw(st.integers(1, 60)))
    if kind == "cancel_all":
        return CancelAll(acct, market)
    if kind == "amend":
        return AmendOrder(acct, market, draw(st.integers(1, 60)), price=draw(st.sampled_from([0, price])),
                          qty=draw(st.sampled_from([0, qty])))
    if kind in ("stop", "take_profit"):
        otype = OrderType.STOP_LIMIT if kind == "stop" else OrderType.TAKE_PROFIT_LIMIT
        stop_price = draw(st.integers(2_000_000, 2_000_040)) * TICK
        return PlaceOrder(acct, market, side, otype, price, qty, stp=stp, stop_price=stop_price)
    if kind == "withdraw":
        asset = draw(st.sampled_from(["BTC", "USDT", "ETH"]))
        return RequestWithdrawal(acct, asset, draw(st.integers(1, 10**9)), f"w{draw(st.integers(0, 8))}", "chain:0x1")
    if kind == "withdrawn":
        wid = f"w{draw(st.integers(0, 8))}"
        return CompleteWithdrawal(wid, "tx") if draw(st.booleans()) else FailWithdrawal(wid, "failed")
    if kind == "transfer":
        asset = draw(st.sampled_from(["BTC", "USDT", "ETH"]))
        return Transfer(draw(any_accounts), draw(any_accounts), asset, draw(st.integers(1, 10**9)))
    if kind == "open":
        return OpenAccount(draw(any_accounts))
    if kind == "fees":
        return SetFees(market, draw(st.integers(0, 5_000)), draw(st.integers(0, 5_000)), "")
    if kind == "halt":
        return HaltMarket(market, draw(st.booleans()), "")
    if kind == "share":
        return SetStakerShare(draw(st.integers(0, 1_000_000)), "")
    if kind == "pay_stakers":
        return PayStakers(draw(st.sampled_from(["BTC", "USDT", "ETH"])), f"period-{draw(st.integers(0, 5))}")
    asset = draw(st.sampled_from(["BTC", "USDT", "ETH", "USD"]))
    return Credit(draw(any_accounts), asset, draw(st.integers(1, 10**20)), f"ref-{draw(st.integers(0, 10**9))}")


def funded() -> Desk:
    d = Desk()
    for a in (1, 2, 3, 4):
        d.fund(a, "USDT", 10**12)  # 1,000,000 USDT
        d.fund(a, "USD", 10**12)
        d.fund(a, "BTC", 10**9)  # 10 BTC
        d.fund(a, "ETH", 10**20)  # 100 ETH
    return d


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), min_size=1, max_size=120))
def test_conservation_and_uncrossed_book_after_every_command(cmds: list[Any]) -> None:
    d = funded()
    opened = {FEE_ACCOUNT, INSURANCE_ACCOUNT, 1, 2, 3, 4}
    for cmd in cmds:
        events = d.apply(cmd)
        errors = d.engine.conservation_errors()
        assert not errors, (cmd, errors)
        opened |= {e[1] for e in events if e[0] == E.ACCOUNT_OPENED}
        opened |= {e[1] for e in events if e[0] == E.BALANCE and e[5] == E.Cause.STAKERS}  # their reserve
        assert set(d.engine.balances) == opened, cmd  # no money ever reaches an account nobody opened
        for book in d.engine.books:
            assert not book.crossed(), cmd
            for side in (book.bids, book.asks):
                for level in side.levels.values():
                    assert level.qty == sum(o.remaining for o in level.orders) > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), min_size=2, max_size=120), st.data())
def test_replay_and_snapshot_restore_are_deterministic(cmds: list[Any], data: Any) -> None:
    a, b = funded(), funded()
    cut = data.draw(st.integers(0, len(cmds)))
    events_a = [a.apply(c) for c in cmds]
    for c in cmds[:cut]:
        b.apply(c)
    # restart b from its snapshot half way, then replay the rest
    restored = state.decode(state.encode(b.engine))
    assert state.state_hash(restored) == state.state_hash(b.engine)
    b.engine = restored
    events_b = [b.apply(c) for c in cmds[cut:]]
    assert events_b == events_a[cut:]
    assert state.state_hash(a.engine) == state.state_hash(b.engine)


# ---------------------------------------------------------------- reference model of the replay


Fills = list[tuple[int, int, int, int]]
Book = list[tuple[int, str, int, int]]


def reference_match(rows: list[dict[str, str]]) -> tuple[Fills, Book]:
    """Plainly written price-time matching with expire-taker STP, for comparison."""
    book: list[dict[str, Any]] = []  # resting orders in arrival order
    known: set[int] = set()
    out: list[tuple[int, int, int, int]] = []
    for r in rows:
        oid = int(r["id"])
        if r["op"] == "cancel":
            book = [o for o in book if o["id"] != oid]
            continue
        side, typ, acct, qty = r["side"], r["type"], int(r["account"]), int(r["qty"])
        price = int(r["price"]) if typ != "market" else None
        opp = [o for o in book if o["side"] != side]
        opp.sort(key=lambda o: (o["price"] if side == "buy" else -o["price"]))  # stable: time order kept
        crossing = [o for o in opp if price is None or (o["price"] <= price if side == "buy" else o["price"] >= price)]
        if typ == "post_only" and crossing:
            continue
        if typ == "fok":
            avail = 0
            for o in crossing:
                if o["account"] == acct:
                    break
                avail += o["rem"]
            if avail < qty:
                continue
        if typ == "market" and not opp:
            continue
        known.add(oid)
        rem = qty
        stp = False
        for o in crossing:
            if rem == 0:
                break
            if o["account"] == acct:
                stp = True
                break
            n = min(rem, o["rem"])
            out.append((oid, o["id"], o["price"], n))
            o["rem"] -= n
            rem -= n
        book = [o for o in book if o["rem"] > 0]
        if rem and typ in ("limit", "post_only") and not stp:
            book.append({"id": oid, "account": acct, "side": side, "price": price, "rem": rem})
    return out, sorted((o["id"], o["side"], o["price"], o["rem"]) for o in book)


@st.composite
def order_log(draw: Any) -> list[dict[str, str]]:
    rows = []
    n = draw(st.integers(1, 80))
    for i in range(1, n + 1):
        if i > 1 and draw(st.integers(0, 4)) == 0:
            rows.append({"op": "cancel", "id": str(draw(st.integers(1, i))), "account": "", "side": "", "type": "",
                         "price": "", "qty": ""})
            continue
        typ = draw(st.sampled_from(["limit", "limit", "limit", "ioc", "fok", "post_only", "market"]))
        rows.append({"op": "new", "id": str(i), "account": str(draw(st.integers(1, 3))),
                     "side": draw(st.sampled_from(["buy", "sell"])), "type": typ,
                     "price": "" if typ == "market" else str(draw(st.integers(95, 105))),
                     "qty": str(draw(st.integers(1, 6)))})
    return rows


@settings(max_examples=300, deadline=None)
@given(order_log())
def test_matching_equals_the_reference_model(rows: list[dict[str, str]]) -> None:
    result = replay(rows)
    want_trades, want_book = reference_match(rows)
    assert [(t.taker_id, t.maker_id, t.price, t.qty) for t in result.trades] == want_trades
    assert [(r.id, r.side, r.price, r.remaining) for r in result.book()] == want_book


def test_large_amounts_survive_snapshots() -> None:
    d = Desk()
    d.fund(1, "ETH", 2**126)  # far beyond 64 bits, still a valid proof-of-reserves value
    e: Engine = state.decode(state.encode(d.engine))
    assert e.balance(1, "ETH") == (2**126, 0)
    assert d.apply(Credit(1, "ETH", 2**126, "too-much"))[0][0] == E.REJECTED


def test_the_public_replay_opens_the_accounts_it_funds() -> None:
    import pytest

    from dpg.core.errors import DomainError

    row = {"op": "new", "id": "1", "account": "7", "side": "buy", "type": "limit", "price": "100", "qty": "2"}
    r = replay([row])
    assert r.engine.has_account(7) and [x.id for x in r.book()] == [1]
    with pytest.raises(DomainError, match="63-bit"):
        replay([{**row, "account": str(1 << 63)}])
