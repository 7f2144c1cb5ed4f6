"""The futures page in Debian's Chromium against ``dpg up``: a leveraged isolated long opened from the
form, its liquidation price (the server's) and unrealized PnL following the mark price as the index
moves, isolated margin added, the position closed at market; a liquidation shown live as it
happens; open orders (a resting limit, a stop-market and a take-profit waiting on the mark) listed
live, one cancelled, then all; the perpetual's order book (a resting order placed through the API,
a click on its level taking the price), recent trades and chart, live; the insurance fund's last
hours; on a phone, no sideways scroll; no serious accessibility violation (axe-core). The index is
the BTC/USDT spot mid (no chains), moved by a market maker's orders."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.api.client import User, served
from tests.web.conftest import shot
from tests.web.test_account_pages import confirm_step
from tests.web.test_exchange import log_in
from tests.web.test_home_demo import AXE, serious_violations
from tests.web.test_trade_page import PHONE, new_page, no_sideways_scroll

pytestmark = pytest.mark.timeout(300)

_seq = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def exchange_url(pg_server: str, tmp_path_factory: pytest.TempPathFactory, vendored: None) -> Iterator[str]:
    """The exchange with its index sampled every 100 ms (the spot mid of BTC/USDT)."""
    with served(pg_server, tmp_path_factory.mktemp("futweb"), "dpg_test_futweb", DPG_INDEX_EVERY_MS="100") as base:
        yield base


def user(base: str, name: str, usdt: str = "0", btc: str = "0") -> User:
    u = User(base, f"fut-{name}-{next(_seq)}@test.dpg")
    if usdt != "0":
        u.credit("USDT", usdt)
    if btc != "0":
        u.credit("BTC", btc)
    return u


def perp(u: User) -> dict[str, Any]:
    return dict(next(m for m in u.http.get("/api/v1/futures/markets").json() if m["market"] == "BTC-PERP"))


def positions(u: User) -> list[dict[str, Any]]:
    return list(u.http.get("/api/v1/futures/positions").json())


def set_index(maker: User, mid: int) -> None:
    """The maker's spot quotes around ``mid``; waits until BTC-PERP's index is ``mid``."""
    assert maker.http.delete("/api/v1/orders", params={"market": "BTC/USDT"}).status_code == 200
    for side, price in (("buy", mid - 10), ("sell", mid + 10)):
        r = maker.order(market="BTC/USDT", side=side, price=str(price), quantity="0.5")
        assert r.status_code == 201, r.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and perp(maker)["index_price"] != f"{mid}.00":
        time.sleep(0.1)
    assert perp(maker)["index_price"] == f"{mid}.00"


def shown(text: str, places: int) -> str:
    """The page's display of a decimal string: ``places`` decimals rounded toward zero, separators."""
    d = Decimal(text).quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
    return f"{d:,.{places}f}"


@pytest.fixture(scope="module")
def axe_source(vendored: None) -> str:
    """axe-core from node_modules (installed with the vendored libraries)."""
    return AXE.read_text()


@pytest.fixture(scope="module")
def maker(exchange_url: str) -> User:
    return user(exchange_url, "maker", usdt="10000000", btc="100")


def isolated(u: User, leverage: int | None = None) -> None:
    r = u.http.post("/api/v1/futures/margin-mode", json={"market": "BTC-PERP", "mode": "isolated"})
    assert r.status_code == 200, r.text
    if leverage is not None:
        r = u.http.post("/api/v1/futures/leverage", json={"market": "BTC-PERP", "leverage": leverage})
        assert r.status_code == 200, r.text


def row_matches(page: Any, u: User) -> bool:
    """The page's position row shows what the API says now (PnL, mark, liquidation price, margin)."""
    [p] = positions(u)
    row = page.locator("[data-testid=position]")
    want = {"pnl": f"{shown(p['unrealized_pnl'], 2)} USDT ({p['roe']}%)",
            "liq": f"{Decimal(p['liquidation_price']):,.2f}", "pos-mark": shown(p["mark_price"], 2),
            "margin": f"{shown(p['margin'], 2)} USDT"}
    got = {k: row.locator(f"[data-testid={k}]").evaluate("(el) => el.firstChild.textContent + "
                                                           "(el.querySelector('small')?.textContent ?? '')")
           for k in want}
    return got == want


def until_row_matches(page: Any, u: User, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if row_matches(page, u):
            return
        time.sleep(0.2)
    assert row_matches(page, u)


def test_open_a_leveraged_position_follow_the_mark_add_margin_and_close(page: Any, web: str, exchange_url: str,
                                                                        maker: User) -> None:
    set_index(maker, 50000)
    alice = user(exchange_url, "alice", usdt="10000")
    bob = user(exchange_url, "bob", usdt="100000")
    assert bob.order(market="BTC-PERP", side="sell", price="50000", quantity="0.02").status_code == 201
    log_in(page, web, alice.email)
    page.click("#nav a[data-nav=futures]")
    expect(page).to_have_url(f"{web}/futures")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("[data-testid=index]")).to_have_text("50,000.00")
    expect(page.locator("[data-testid=countdown]")).to_have_text(re.compile(r"^\d\d:[0-5]\d:[0-5]\d$"))
    assert page.locator("[data-testid=index-stale]").count() == 0
    # isolated, 10x
    page.click("[data-mode=isolated]")
    expect(page.locator("[data-mode=isolated]")).to_have_attribute("aria-pressed", "true")
    page.fill("input[name=leverage]", "10")
    page.click("[data-testid=leverage-form] button[type=submit]")
    expect(page.locator("[data-testid=toast]", has_text="Leverage 10x on BTC-PERP")).to_be_visible()
    settings = {s["market"]: s for s in alice.http.get("/api/v1/futures/settings").json()}
    assert settings["BTC-PERP"] == {**settings["BTC-PERP"], "leverage": 10, "margin_mode": "isolated"}
    # a 10x long of 0.02 BTC at 50,000: 100 USDT of margin
    page.fill("input[name=price]", "50000")
    page.fill("input[name=amount]", "0.02")
    page.click("[data-testid=futures-order-form] button[type=submit]")
    expect(page.locator("[data-testid=toast]", has_text="Long Limit: 0.0200 BTC filled")).to_be_visible()
    row = page.locator("[data-testid=position]")
    expect(row.locator("[data-testid=size]")).to_have_text("0.0200 BTC")
    expect(row.locator("[data-testid=entry]")).to_have_text("50,000.00")
    expect(row.locator("[data-testid=margin]")).to_contain_text("100.00 USDT")
    until_row_matches(page, alice)
    liq_before = Decimal(positions(alice)[0]["liquidation_price"])
    assert Decimal(45000) < liq_before < Decimal(50000)
    shot(page, "futures-position")
    # the index falls to 48,000: the mark follows, the PnL turns negative on the page as in the API
    set_index(maker, 48000)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Decimal(positions(alice)[0]["mark_price"]) >= 50000:
        time.sleep(0.1)
    assert Decimal(positions(alice)[0]["unrealized_pnl"]) < 0
    expect(row.locator("[data-testid=pnl]")).to_have_class("num down")
    until_row_matches(page, alice)
    # 50 USDT more margin: the liquidation price moves away
    row.locator("input[name=margin_amount]").fill("50")
    row.locator("[data-testid=add-margin]").click()
    expect(page.locator("[data-testid=toast]", has_text="margin is now 150.00 USDT")).to_be_visible()
    expect(row.locator("[data-testid=margin]")).to_contain_text("150.00 USDT")
    [p] = positions(alice)
    assert p["margin"] == "150.000000" and Decimal(p["liquidation_price"]) < liq_before
    until_row_matches(page, alice)
    # closed at market against a bid
    assert bob.order(market="BTC-PERP", side="buy", price="48000", quantity="0.02").status_code == 201
    row.locator("[data-testid=close]").click()
    expect(page.locator("[data-testid=toast]", has_text="BTC-PERP position closed")).to_be_visible()
    expect(page.locator("[data-testid=positions]")).to_contain_text("No open position")
    assert positions(alice) == []
    # 10,000 - 100 of margin + the loss: 0.02 x (48,000 - 50,000) = -40, less two taker fees
    usdt = {b["asset"]: b for b in alice.http.get("/api/v1/balances").json()}["USDT"]
    assert Decimal(usdt["total"]) < Decimal(10000) - 40


def test_a_liquidation_is_shown_live(page: Any, web: str, exchange_url: str, maker: User) -> None:
    set_index(maker, 50000)
    carol = user(exchange_url, "carol", usdt="1000")
    dave = user(exchange_url, "dave", usdt="100000")
    isolated(carol, leverage=50)
    assert dave.order(market="BTC-PERP", side="sell", price="50000", quantity="0.01").status_code == 201
    r = carol.order(market="BTC-PERP", side="buy", price="50000", quantity="0.01")
    assert r.status_code == 201 and r.json()["status"] == "filled", r.text
    liq = Decimal(positions(carol)[0]["liquidation_price"])
    log_in(page, web, carol.email)
    page.goto(f"{web}/futures/BTC-PERP")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    row = page.locator("[data-testid=position]")
    expect(row.locator("[data-testid=liq]")).to_have_text(f"{liq:,.2f}")
    expect(page.locator("[data-testid=liquidations]")).to_contain_text("No liquidation yet")
    # the index falls far below the liquidation price: the position is liquidated while the page is open
    set_index(maker, 40000)
    first = page.locator("[data-testid=liquidation]").first
    expect(first).to_contain_text("0.0100 BTC", timeout=30_000)
    expect(page.locator("[data-testid=positions]")).to_contain_text("No open position")
    assert positions(carol) == []
    rows = carol.http.get("/api/v1/futures/liquidations", params={"market": "BTC-PERP"}).json()
    assert rows and rows[0]["size"] in ("0.01000000", "-0.01000000")
    ins = {a["asset"]: a["balance"] for a in carol.http.get("/api/v1/futures/insurance").json()}
    expect(page.locator("[data-testid=insurance-USDT]")).to_have_text(f"{shown(ins['USDT'], 2)} USDT")


def open_orders(u: User) -> list[dict[str, Any]]:
    return list(u.http.get("/api/v1/orders/open", params={"market": "BTC-PERP"}).json())


def test_open_orders_listed_live_one_cancelled_then_all(page: Any, web: str, exchange_url: str, maker: User) -> None:
    set_index(maker, 50000)
    gina = user(exchange_url, "gina", usdt="10000")
    log_in(page, web, gina.email)
    page.goto(f"{web}/futures/BTC-PERP")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    orders = page.locator("[data-testid=open-orders]")
    expect(orders).to_contain_text("No open orders on BTC-PERP")
    # a resting limit long and a stop-market short from the form
    page.fill("input[name=price]", "49000")
    page.fill("input[name=amount]", "0.01")
    page.click("[data-testid=futures-order-form] button[type=submit]")
    expect(page.locator("[data-testid=toast]", has_text="Long Limit order placed")).to_be_visible()
    page.click("[data-testid=futures-order-form] [data-side=sell]")
    page.click("[data-testid=futures-order-form] [data-type=stop_market]")
    page.fill("input[name=stop]", "45000")
    page.fill("input[name=amount]", "0.01")
    page.click("[data-testid=futures-order-form] button[type=submit]")
    expect(page.locator("[data-testid=toast]", has_text="Short Stop-market order placed")).to_be_visible()
    rows = orders.locator("[data-testid=open-order]")
    expect(rows).to_have_count(2)
    limit = orders.locator("[data-testid=open-order][data-type=limit]")
    expect(limit).to_contain_text("49,000.00")
    expect(limit).to_contain_text("0.0100 BTC")
    stop = orders.locator("[data-testid=open-order][data-type=stop_market]")
    expect(stop).to_contain_text("stop 45,000.00")
    expect(stop).to_contain_text("market")
    # a take-profit placed elsewhere (the API) shows up live, waiting on the mark
    r = gina.order(market="BTC-PERP", side="sell", type="take_profit_market", stop_price="55000", quantity="0.01")
    assert r.status_code == 201 and r.json()["status"] == "open", r.text
    expect(rows).to_have_count(3)
    take_profit = orders.locator("[data-testid=open-order][data-type=take_profit_market]")
    expect(take_profit).to_contain_text("trigger 55,000.00")
    assert {o["type"] for o in open_orders(gina)} == {"limit", "stop_market", "take_profit_market"}
    # the limit cancelled
    limit.locator("[data-testid=cancel]").click()
    expect(page.locator("[data-testid=toast]", has_text="Order cancelled: buy 0.0100 BTC at 49,000.00")).to_be_visible()
    expect(rows).to_have_count(2)
    expect(limit).to_have_count(0)
    assert {o["type"] for o in open_orders(gina)} == {"stop_market", "take_profit_market"}
    # cancel all, confirmed
    orders.locator("[data-testid=cancel-all]").click()
    dialog = confirm_step(page, "cancel-all")
    expect(dialog.locator("[data-testid=confirm-count]")).to_have_text("2")
    dialog.locator("[data-testid=confirm-yes]").click()
    expect(page.locator("[data-testid=toast]", has_text="Cancelled 2 orders")).to_be_visible()
    expect(rows).to_have_count(0)
    expect(orders).to_contain_text("No open orders on BTC-PERP")
    assert open_orders(gina) == []
    usdt = {b["asset"]: b for b in gina.http.get("/api/v1/balances").json()}["USDT"]
    assert usdt["available"] == usdt["total"] == "10000.000000"  # nothing held back once all are cancelled


def test_the_perpetuals_book_trades_and_chart_live(page: Any, web: str, exchange_url: str, maker: User) -> None:
    set_index(maker, 50000)
    hank = user(exchange_url, "hank", usdt="100000")
    ivy = user(exchange_url, "ivy", usdt="100000")
    log_in(page, web, ivy.email)
    page.goto(f"{web}/futures/BTC-PERP")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator(".book .levels-head")).to_contain_text("Price (USDT)")
    expect(page.locator(".book .levels-head")).to_contain_text("Amount (BTC)")
    expect(page.locator("[data-testid=chart] canvas").first).to_be_visible()
    # resting orders placed through the API appear in the book as they are placed
    r = hank.order(market="BTC-PERP", side="sell", price="50123.45", quantity="0.03")
    assert r.status_code == 201 and r.json()["status"] == "open", r.text
    r = hank.order(market="BTC-PERP", side="buy", price="49876.55", quantity="0.02")
    assert r.status_code == 201 and r.json()["status"] == "open", r.text
    ask = page.locator('[data-testid=asks] .level[data-price="50123.45"]')
    expect(ask).to_contain_text("50,123.45")
    expect(ask.locator("span").nth(1)).to_have_text("0.0300")
    bid = page.locator('[data-testid=bids] .level[data-price="49876.55"]')
    expect(bid.locator("span").nth(1)).to_have_text("0.0200")
    # a click on the level takes its price into the order form
    ask.click()
    expect(page.locator("input[name=price]")).to_have_value("50123.45")
    expect(page.locator("[data-testid=futures-order-form] [data-type=limit]")).to_have_attribute("aria-pressed", "true")
    # a trade against it: in recent trades, the level smaller, the last price between asks and bids
    r = ivy.order(market="BTC-PERP", side="buy", price="50123.45", quantity="0.01")
    assert r.status_code == 201 and r.json()["status"] == "filled", r.text
    first = page.locator("[data-testid=trades] .row").first
    expect(first.locator("span").nth(0)).to_have_text("50,123.45")
    expect(first.locator("span").nth(1)).to_have_text("0.0100")
    expect(first).to_have_class(re.compile(r"\bup\b"))
    expect(ask.locator("span").nth(1)).to_have_text("0.0200")
    expect(page.locator(".book .mid .last")).to_have_text("50,123.45")
    trades = ivy.http.get("/api/v1/trades", params={"market": "BTC-PERP", "limit": 1}).json()
    assert trades[0]["price"] == "50123.45" and Decimal(trades[0]["quantity"]) == Decimal("0.01")
    # the chart's timeframes switch; its candles are the perpetual's
    page.click("[data-testid=futures] [data-interval='5m']")
    expect(page.locator("[data-interval='5m']")).to_have_attribute("aria-pressed", "true")
    candles = ivy.http.get("/api/v1/candles", params={"market": "BTC-PERP", "interval": "5m"}).json()
    assert candles and candles[-1]["close"] == "50123.45"
    assert hank.http.delete("/api/v1/orders", params={"market": "BTC-PERP"}).status_code == 200
    expect(ask).to_have_count(0)
    expect(bid).to_have_count(0)


def test_the_page_fits_a_phone_and_passes_the_accessibility_check(browser: Any, web: str, exchange_url: str,
                                                                    maker: User, axe_source: str) -> None:
    set_index(maker, 50000)
    erin = user(exchange_url, "erin", usdt="5000")
    frank = user(exchange_url, "frank", usdt="100000")
    isolated(erin)
    assert frank.order(market="BTC-PERP", side="sell", price="50000", quantity="0.01").status_code == 201
    assert erin.order(market="BTC-PERP", side="buy", price="50000", quantity="0.01").status_code == 201
    errors: list[str] = []
    page = new_page(browser, True, errors)
    try:
        log_in(page, web, erin.email)
        page.goto(f"{web}/futures/BTC-PERP")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        expect(page.locator("[data-testid=position] [data-testid=size]")).to_have_text("0.0100 BTC")
        expect(page.locator("[data-testid=add-margin]")).to_be_visible()
        # the insurance fund's last hours: this hour's fee share, the balance at its end as the API says
        hist = erin.http.get("/api/v1/futures/insurance/history", params={"asset": "USDT", "limit": 24}).json()
        now = hist["buckets"][-1]
        assert Decimal(now["by_cause"]["fee"]) > 0
        bucket = page.locator("[data-testid=insurance-bucket]").first
        expect(bucket.locator("[data-testid=ins-balance]")).to_have_text(f"{Decimal(now['balance']):,}")
        expect(bucket.locator("[data-cause=fee]")).to_have_text(f"fee share {Decimal(now['by_cause']['fee']):,}")
        assert page.viewport_size == PHONE
        no_sideways_scroll(page)
        assert serious_violations(page, axe_source) == []
        shot(page, "futures-phone")
        page.set_viewport_size({"width": 1440, "height": 900})  # and the desktop layout
        assert serious_violations(page, axe_source) == []
    finally:
        page.context.close()
    assert not errors, errors
