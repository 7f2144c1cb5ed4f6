"""The trade page as a trader from another exchange expects it, in Debian's Chromium on a desktop
(1440x900) and a phone (390x844, touch; 360 px for the orders table): balances available and
locked in full at each asset's display places; shortcuts never fire inside a field and a field
takes no letter; open orders, history and fills of every market with a market column and filter;
a toast for each result (placed, cancelled, filled with base, quote and average price) that goes
away; refusals in the trader's units next to their field, over-balance as it is typed; the 24 h
change in %, thousands separators on the chart's axis, units on the book; no sideways scroll, a
Buy / Sell bar on a phone; a Deposit link for a newcomer; tab order, labels, contrast."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from dpg.core.errors import Reject
from tests.api.client import User
from tests.web.conftest import shot
from tests.web.test_exchange import log_in

pytestmark = pytest.mark.timeout(300)

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 360, "height": 780}

# Reject codes no order, cancel or cancel-all can meet (listing, credits, transfers, withdrawals, epochs)
NOT_ORDER_CODES = {Reject.UNKNOWN_ASSET, Reject.DUPLICATE_ASSET, Reject.DUPLICATE_MARKET, Reject.INVALID_MARKET,
                   Reject.DUPLICATE_REFERENCE, Reject.SELF_TRANSFER, Reject.DUPLICATE_WITHDRAWAL,
                   Reject.STALE_EPOCH, Reject.WITHDRAWAL_NOT_FOUND, Reject.GOVERNED,
                   # the perpetuals' (the trade page lists the spot markets of /api/v1/markets only)
                   Reject.INSUFFICIENT_MARGIN, Reject.REDUCE_ONLY, Reject.INVALID_LEVERAGE, Reject.NO_INDEX_PRICE,
                   Reject.POSITION_OPEN, Reject.NO_POSITION, Reject.FUNDING_NOT_DUE, Reject.INDEX_STALE}


def new_page(browser: Any, phone: bool, errors: list[str]) -> Any:
    context = browser.new_context(viewport=PHONE if phone else DESKTOP, is_mobile=phone, has_touch=phone)
    context.set_default_timeout(20_000)
    p = context.new_page()
    p.on("pageerror", lambda e: errors.append(str(e)))
    return p


@pytest.fixture(params=["desktop", "phone"])
def tpage(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    """A fresh browser context, desktop or phone (touch); uncaught page errors fail the test."""
    errors: list[str] = []
    p = new_page(browser, request.param == "phone", errors)
    p.phone = request.param == "phone"
    yield p
    p.context.close()
    assert not errors, errors


@pytest.fixture
def dpage(browser: Any) -> Iterator[Any]:
    """A desktop page only (keyboard and tab order are a desktop's)."""
    errors: list[str] = []
    p = new_page(browser, False, errors)
    yield p
    p.context.close()
    assert not errors, errors


_seq = iter(range(1, 10_000))


def trader(exchange_url: str, name: str, **funds: str) -> User:
    u = User(exchange_url, f"trade-{name}-{next(_seq)}@test.dpg")
    for asset, amount in funds.items():
        u.credit(asset, amount)
    return u


def limit(user: User, market: str, side: str, price: str, qty: str) -> None:
    r = user.order(market=market, side=side, price=price, quantity=qty)
    assert r.status_code == 201, r.text


def open_market(page: Any, web: str, user: User, market: str = "BTC-USDT") -> None:
    log_in(page, web, user.email)
    page.goto(f"{web}/trade/{market}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("[data-testid=balances] table")).to_be_visible()


def no_sideways_scroll(page: Any) -> None:
    """The document is no wider than the viewport (measured, not assumed)."""
    width = page.evaluate("() => ({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,"
                          " view: document.documentElement.clientWidth})")
    assert width["doc"] <= width["view"] and width["body"] <= width["view"], width


def toast(page: Any, text: str) -> Any:
    return page.locator("[data-testid=toast]", has_text=text)


def place(page: Any, price: str, amount: str) -> None:
    page.fill("input[name=price]", price)
    page.fill("input[name=amount]", amount)
    page.press("input[name=amount]", "Enter")


def fully_visible(page: Any, selector: str) -> None:
    """Every element matching `selector` shows its whole text: not clipped by its box, its panel or the viewport."""
    bad = page.evaluate("""(sel) => [...document.querySelectorAll(sel)].flatMap((el) => {
        const r = el.getBoundingClientRect(), p = el.closest('.panel').getBoundingClientRect();
        const ok = el.scrollWidth <= el.clientWidth && r.left >= p.left && r.right <= p.right
            && r.right <= document.documentElement.clientWidth;
        return ok ? [] : [`${el.dataset.testid}: ${el.textContent} ${r.left}-${r.right} in ${p.left}-${p.right}`];
    })""", selector)
    assert not bad, bad


def test_balances_in_full_and_locked_after_a_limit_order(tpage: Any, web: str, exchange_url: str) -> None:
    page = tpage
    u = trader(exchange_url, "bal", USDT="1234567.5", BTC="1", ETH="2.5")
    open_market(page, web, u)
    expect(page.locator("[data-testid=available-USDT]")).to_have_text("1,234,567.500000")
    expect(page.locator("[data-testid=available-BTC]")).to_have_text("1.00000000")
    eth = page.locator("[data-testid=available-ETH]")
    expect(eth).to_have_text("2.50000000")  # ETH at 8 places (its lot's 4 + 4), not its 18
    expect(eth).to_have_attribute("title", "2.500000000000000000 ETH")  # the exact amount on hover
    page.locator("input[name=price]").fill("40000,5")
    page.locator("input[name=amount]").fill("0,0123")
    expect(page.locator("[data-testid=total]")).to_have_text("Total ≈ 492.01 USDT")
    page.press("input[name=amount]", "Enter")
    placed = toast(page, "Buy limit order placed: 0.0123 BTC at 40,000.50 USDT")
    expect(placed).to_be_visible()
    expect(page.locator("[data-testid=locked-USDT]")).to_have_text("492.006150")
    expect(page.locator("[data-testid=available-USDT]")).to_have_text("1,234,075.493850")
    fully_visible(page, "[data-testid=balances] td, [data-testid=balances] th")
    if not page.phone:  # and in the narrower two-column layout of a small laptop
        page.set_viewport_size({"width": 1024, "height": 768})
        fully_visible(page, "[data-testid=balances] td, [data-testid=balances] th")
    assert u.balance("USDT") == ("1234075.493850", "492.006150")
    expect(placed).to_have_count(0)  # the toast goes away by itself
    # keyboard hints on a desktop only, never on a touch screen
    hint = page.locator(".sides [data-side=buy] .hint")
    expect(hint).to_be_hidden() if page.phone else expect(hint).to_be_visible()
    no_sideways_scroll(page)


def test_keys_typed_in_a_field_stay_in_the_field(dpage: Any, web: str, exchange_url: str) -> None:
    page = dpage
    u = trader(exchange_url, "keys", USDT="1000")
    open_market(page, web, u)
    buy, sell = page.locator(".sides [data-side=buy]"), page.locator(".sides [data-side=sell]")
    amount, price = page.locator("input[name=amount]"), page.locator("input[name=price]")
    expect(buy).to_have_attribute("aria-pressed", "true")
    amount.click()
    page.keyboard.type("0.5s")
    expect(amount).to_have_value("0.5")  # no letter in an amount
    expect(amount).to_be_focused()
    expect(buy).to_have_attribute("aria-pressed", "true")  # "s" did not flip the side
    expect(sell).to_have_attribute("aria-pressed", "false")
    price.click()
    page.keyboard.type("1b2s3x,5")
    expect(price).to_have_value("123,5")  # no stray letter
    expect(buy).to_have_attribute("aria-pressed", "true")
    # outside the fields the shortcuts still work
    page.locator(".bar").click()
    page.keyboard.press("s")
    expect(sell).to_have_attribute("aria-pressed", "true")
    expect(price).to_be_focused()
    expect(page.locator("[data-testid=submit]")).to_have_text("Sell BTC")


def test_orders_and_fills_of_every_market_with_a_filter(tpage: Any, web: str, exchange_url: str) -> None:
    page = tpage
    u = trader(exchange_url, "mkts", USDT="10000", ETH="3")
    other = trader(exchange_url, "mkts-taker", USDT="10000")
    assert u.order(market="ETH/USDT", side="sell", price="2500.00", quantity="1.0000").status_code == 201
    assert other.order(market="ETH/USDT", side="buy", type="market", quantity="0.4000").status_code == 201
    open_market(page, web, u)
    row = page.locator(".orders tbody tr[data-order-id]")
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text("ETH/USDT")
    expect(row.first).to_contain_text("2,500.00")
    expect(row.first).to_contain_text("1.0000 ETH")
    expect(row.first.locator("td.mkt")).to_have_text("ETH/USDT")
    # the filter: another market hides it, its own shows it
    page.select_option("[data-testid=market-filter]", "BTC/USDT")
    expect(row).to_have_count(0)
    expect(page.locator(".orders tbody")).to_contain_text("No open orders on BTC/USDT")
    page.select_option("[data-testid=market-filter]", "ETH/USDT")
    expect(row).to_have_count(1)
    page.select_option("[data-testid=market-filter]", "")
    # its fill, from another market than the page's
    page.get_by_role("tab", name="Fills").click()
    fill = page.locator(".orders tbody tr.fill")
    expect(fill).to_have_count(1)
    expect(fill.first.locator("td.mkt")).to_have_text("ETH/USDT")
    expect(fill.first).to_contain_text("0.4000 ETH")
    expect(fill.first).to_contain_text("1,000.00 USDT")
    page.select_option("[data-testid=market-filter]", "BTC/USDT")
    expect(fill).to_have_count(0)
    page.select_option("[data-testid=market-filter]", "")
    # cancelled from the BTC/USDT page; the toast says so, and goes away
    page.get_by_role("tab", name="Open orders").click()
    row.first.get_by_role("button", name="Cancel").click()
    cancelled = toast(page, "Order cancelled: sell 1.0000 ETH at 2,500.00 on ETH/USDT (0.4000 ETH had filled)")
    expect(cancelled).to_be_visible()
    expect(row).to_have_count(0)
    assert u.http.get("/api/v1/orders/open").json() == []
    page.get_by_role("tab", name="Order history").click()
    hist = page.locator(".orders tbody tr[data-market='ETH/USDT']")
    expect(hist).to_have_count(1)
    expect(hist.first).to_contain_text("canceled")
    expect(cancelled).to_have_count(0)
    no_sideways_scroll(page)


def test_fill_toasts_name_base_quote_and_average_price(tpage: Any, web: str, exchange_url: str) -> None:
    page = tpage
    u = trader(exchange_url, "fill", USDT="100000", BTC="1")
    maker = trader(exchange_url, "fill-maker", BTC="2", USDT="100000")
    for price in ("60000.00", "61000.00"):
        assert maker.order(market="BTC/USDT", side="sell", price=price, quantity="0.1000").status_code == 201
    open_market(page, web, u)
    # a market buy through two levels: one toast, the average price
    page.get_by_role("button", name="Market", exact=True).click()
    page.fill("input[name=amount]", "0.2")
    page.press("input[name=amount]", "Enter")
    bought = toast(page, "Bought 0.2000 BTC for 12,100.00 USDT at 60,500.00")
    expect(bought).to_be_visible()
    # a resting sell filled later by someone else: told from the feed
    page.get_by_role("button", name="Limit", exact=True).click()
    page.locator(".sides [data-side=sell]").click()
    place(page, "65000", "0.25")
    expect(toast(page, "Sell limit order placed: 0.2500 BTC at 65,000.00 USDT")).to_be_visible()
    assert maker.order(market="BTC/USDT", side="buy", price="65000.00", quantity="0.2500").status_code == 201
    expect(toast(page, "Sold 0.2500 BTC for 16,250.00 USDT at 65,000.00")).to_be_visible()
    page.get_by_role("tab", name="Fills").click()
    expect(page.locator(".orders tbody tr.fill")).to_have_count(3)
    assert toast(page, "Bought").count() == 1  # told once, not again from the feed
    expect(bought).to_have_count(0)
    # the cancel-all result is said too
    page.get_by_role("tab", name="Open orders").click()
    for price in ("70,000.00", "71,000.00"):
        place(page, price.replace(",", ""), "0.01")
        expect(toast(page, f"Sell limit order placed: 0.0100 BTC at {price} USDT")).to_be_visible()
    expect(page.locator(".orders tbody tr[data-order-id]")).to_have_count(2)
    expect(page.locator(".orders tbody td[data-label^='[object']")).to_have_count(0)  # columns named in words
    page.click("[data-testid=cancel-all]")
    page.click("dialog[data-kind=cancel-all] [data-testid=confirm-yes]")
    expect(toast(page, "Cancelled 2 orders")).to_be_visible()
    expect(page.locator(".orders tbody tr[data-order-id]")).to_have_count(0)


def test_refusals_in_the_traders_units_beside_the_field(tpage: Any, web: str, exchange_url: str) -> None:
    page = tpage
    u = trader(exchange_url, "err", USDT="100")
    maker = trader(exchange_url, "err-maker", BTC="1")
    assert maker.order(market="BTC/USDT", side="sell", price="50000.00", quantity="0.0010").status_code == 201
    open_market(page, web, u)
    amount_err = page.locator("[data-testid=amount-error]")
    # below the minimum order: in USDT, next to the amount, nothing sent
    place(page, "40000", "0.0001")
    expect(amount_err).to_have_text("Minimum order 5 USDT")
    expect(page.locator("input[name=amount]")).to_have_attribute("aria-invalid", "true")
    assert page.locator("body").inner_text().count("BELOW_MIN_NOTIONAL") == 0
    assert u.http.get("/api/v1/orders/open").json() == []
    # more than the balance: said while typing, before any Enter
    page.fill("input[name=amount]", "")
    page.locator("input[name=amount]").press_sequentially("0.01")
    expect(amount_err).to_have_text("Not enough USDT: 100.000000 USDT available")
    page.fill("input[name=amount]", "0.002")
    expect(amount_err).to_be_hidden()
    # a refusal only the exchange can make: post-only that would take, said beside the price
    page.check("input[name=post_only]")
    place(page, "50000", "0.001")
    price_err = page.locator("[data-testid=price-error]")
    expect(price_err).to_have_text("Post-only: this price would buy at once; set it below the lowest ask")
    expect(page.locator("[data-testid=order-form]")).not_to_contain_text("POST_ONLY_WOULD_TAKE")
    page.fill("input[name=price]", "49000")
    expect(price_err).to_be_hidden()
    # every code an order, a cancel or a cancel-all may meet has its own words: no code, no raw reason
    codes = sorted(c.value for c in Reject if c not in NOT_ORDER_CODES)
    said = page.evaluate("""async (codes) => {
        const { orderError } = await import("/static/app/pages/trade.js");
        const { MarketMath } = await import("/static/app/money.js");
        const m = new MarketMath({ market: "BTC/USDT", base: "BTC", quote: "USDT", price_decimals: 2,
            quantity_decimals: 4, tick_size: "0.01", lot_size: "0.0001", min_notional: "5.00" }, { BTC: 8, USDT: 6 });
        return codes.map((code) => [code, orderError({ code, reason: "raw reason 5000000" }, m, "buy", "100.00")]);
    }""", codes)
    for code, msg in said:
        assert code not in msg["text"] and "raw reason" not in msg["text"] and "5000000" not in msg["text"], (code, msg)
    words = dict((code, msg) for code, msg in said)
    assert words["BELOW_MIN_NOTIONAL"] == {"field": "amount", "text": "Minimum order 5 USDT"}
    assert words["INSUFFICIENT_FUNDS"] == {"field": "amount", "text": "Not enough USDT: 100.00 USDT available"}
    assert words["PRICE_OFF_TICK"]["field"] == "price" and "0.01 USDT" in words["PRICE_OFF_TICK"]["text"]
    assert words["QUANTITY_OFF_LOT"]["text"] == "The amount goes in steps of 0.0001 BTC"


def test_ticker_change_in_percent_chart_axis_and_book_units(dpage: Any, web: str, exchange_url: str) -> None:
    page = dpage
    a = trader(exchange_url, "tick-a", BTC="1", USD="100000")
    b = trader(exchange_url, "tick-b", BTC="1", USD="100000")
    for price in ("40000.00", "41000.00"):  # on BTC/USD, which no other test trades
        assert a.order(market="BTC/USD", side="sell", price=price, quantity="0.0100").status_code == 201
        assert b.order(market="BTC/USD", side="buy", type="market", quantity="0.0100").status_code == 201
    assert a.order(market="BTC/USD", side="sell", price="1234567.00", quantity="0.0100").status_code == 201
    open_market(page, web, a, "BTC-USD")
    expect(page.locator("[data-testid=change]")).to_have_text("+1,000.00 (+2.50%)")
    expect(page.locator(".book .levels-head")).to_contain_text("Total (BTC)")
    expect(page.locator(".book .levels-head")).to_contain_text("Price (USD)")
    expect(page.locator("[data-testid=asks] .level").first).to_contain_text("1,234,567.00")
    axis = page.evaluate("""async () => {
        const { CandleChart } = await import("/static/app/chart.js");
        const box = document.createElement("div");
        box.style.cssText = "width: 400px; height: 200px";
        document.body.append(box);
        const chart = new CandleChart(box, { price_decimals: 2 });
        const out = [1234567.5, 60000, 999.99].map((p) => chart.candles.priceFormatter().format(p));
        chart.remove();
        box.remove();
        return out;
    }""")
    assert axis == ["1,234,567.50", "60,000.00", "999.99"]


def test_a_newcomer_sees_a_deposit_link(tpage: Any, web: str, exchange_url: str) -> None:
    page = tpage
    u = trader(exchange_url, "new")
    open_market(page, web, u)
    nofunds = page.locator("[data-testid=no-funds]")
    expect(nofunds).to_contain_text("No funds yet")
    link = page.locator("[data-testid=deposit-link]")
    expect(link).to_have_attribute("href", "/wallet")
    expect(page.locator("[data-testid=form-available]")).to_contain_text("Available: 0.000000 USDT")
    expect(page.locator("[data-testid=form-available] a")).to_have_attribute("href", "/wallet")
    link.click()
    expect(page).to_have_url(f"{web}/wallet")
    expect(page.locator("[data-testid=trade]")).to_have_count(0)


def test_phone_bar_no_sideways_scroll_and_orders_at_360(browser: Any, web: str, exchange_url: str) -> None:
    errors: list[str] = []
    page = new_page(browser, True, errors)
    try:
        u = trader(exchange_url, "phone", USDT="50000", BTC="1")
        maker = trader(exchange_url, "phone-maker", USDT="50000", BTC="1")
        for i in range(8):
            limit(maker, "BTC/USDT", "sell", f"{52000 + 10 * i}.00", "0.0050")
            limit(maker, "BTC/USDT", "buy", f"{48000 - 10 * i}.00", "0.0050")
        open_market(page, web, u)
        no_sideways_scroll(page)
        bar = page.locator("[data-testid=mobile-bar]")
        form = page.locator("[data-testid=order-form]")
        # the bar stays at the bottom of the screen wherever the page is scrolled
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        expect(form).not_to_be_in_viewport()
        expect(bar).to_be_in_viewport()
        box = bar.bounding_box()
        assert box is not None and abs(box["y"] + box["height"] - PHONE["height"]) <= 1, box
        bar.get_by_role("button", name="Sell BTC").click()
        expect(form).to_be_in_viewport()
        expect(page.locator(".sides [data-side=sell]")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("input[name=price]")).to_be_focused()
        page.keyboard.type("55000")
        page.fill("input[name=amount]", "0.01")
        page.locator("[data-testid=submit]").tap()
        expect(toast(page, "Sell limit order placed: 0.0100 BTC at 55,000.00 USDT")).to_be_visible()
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "trade-phone")
        # the orders table at 360 px: stacked, every value and the Cancel button on screen
        page.set_viewport_size(NARROW)
        row = page.locator(".orders tbody tr[data-order-id]")
        expect(row).to_have_count(1)
        no_sideways_scroll(page)
        row.first.scroll_into_view_if_needed()
        bad = page.evaluate("""() => [...document.querySelectorAll('.orders tr[data-order-id] td')].flatMap((td) => {
            const r = td.getBoundingClientRect();
            return r.left >= 0 && r.right <= document.documentElement.clientWidth && td.scrollWidth <= td.clientWidth
                ? [] : [`${td.dataset.label}: ${td.textContent} ${r.left}-${r.right}`];
        })""")
        assert not bad, bad
        expect(row.first.locator("td[data-label=Market]")).to_have_text("BTC/USDT")
        cancel = row.first.get_by_role("button", name="Cancel")
        expect(cancel).to_be_in_viewport()
        cancel.tap()
        expect(toast(page, "Order cancelled: sell 0.0100 BTC at 55,000.00 on BTC/USDT")).to_be_visible()
        expect(row).to_have_count(0)
        no_sideways_scroll(page)
    finally:
        page.context.close()
    assert not errors, errors


def contrast(page: Any, selector: str) -> float:
    """The WCAG contrast ratio of an element's text colour on its background, from computed styles."""
    return float(page.evaluate("""(sel) => {
        const el = document.querySelector(sel), cs = getComputedStyle(el);
        const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
        const lum = (c) => {
            const [r, g, b] = rgb(c).map((v) => v / 255)
                .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const [hi, lo] = [lum(cs.color), lum(cs.backgroundColor)].sort((a, b) => b - a);
        return (hi + 0.05) / (lo + 0.05);
    }""", selector))


def test_tab_order_labels_and_contrast(dpage: Any, web: str, exchange_url: str) -> None:
    page = dpage
    u = trader(exchange_url, "a11y", USDT="10000", BTC="1")
    maker = trader(exchange_url, "a11y-maker", USDT="10000", BTC="1")
    for i in range(12):  # a full book: 12 bids, 12 asks
        limit(maker, "BTC/USDT", "sell", f"{30100 + i}.00", "0.0010")
        limit(maker, "BTC/USDT", "buy", f"{29900 - i}.00", "0.0010")
    open_market(page, web, u)
    expect(page.locator("[data-testid=bids] .level")).to_have_count(12)

    # from the market picker, Tab reaches the order form without stepping through the book
    page.focus("select[name=market]")
    stops = []
    for _ in range(30):
        page.keyboard.press("Tab")
        where = page.evaluate("() => { const a = document.activeElement;"
                              " return a.closest('.orderform') ? 'form' : a.closest('.level') ? 'level' : a.tagName; }")
        stops.append(where)
        if where == "form":
            break
    assert stops[-1] == "form" and "level" not in stops and len(stops) <= 12, stops
    # the skip link: the first stop of the page's content, straight to the form
    page.focus("#who a")
    page.keyboard.press("Tab")
    skip = page.locator("[data-testid=skip-to-form]")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator(".sides [data-side=buy]")).to_be_focused()
    expect(page).to_have_url(f"{web}/trade/BTC-USDT")  # not a navigation

    # every control of the page has a name a screen reader can say
    unnamed = page.evaluate("""() => [...document.querySelectorAll('.trade :is(input, select, button, a)')]
        .filter((el) => {
            const named = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.labels?.length
                || (el.matches('button, a') && el.textContent.trim());
            return !named;
        }).map((el) => el.outerHTML.slice(0, 80))""")
    assert unnamed == []

    # the Buy button: white on its green at least 4.5:1 (computed styles), and the Sell one
    assert contrast(page, "[data-testid=submit]") >= 4.5
    assert contrast(page, ".sides [data-side=buy]") >= 4.5
    page.locator(".sides [data-side=sell]").click()
    assert contrast(page, "[data-testid=submit]") >= 4.5
    assert contrast(page, ".sides [data-side=sell]") >= 4.5


def test_screenshot_of_a_busy_trade_page(dpage: Any, web: str, exchange_url: str) -> None:
    """trade.png: ETH/USD (a market no other test here trades), a book, a few trades, an order of
    this market and one of another, and the toasts of an order placed and a market buy."""
    page = dpage
    u = trader(exchange_url, "shot", USD="25000", USDT="5000", ETH="2")
    maker = trader(exchange_url, "shot-maker", USD="200000", ETH="40")
    taker = trader(exchange_url, "shot-taker", USD="200000", ETH="40")
    for price, qty, side in (("2598.40", "0.4000", "buy"), ("2601.10", "0.2500", "sell"), ("2603.75", "1.2000", "buy"),
                             ("2602.20", "0.6000", "sell"), ("2604.90", "0.3500", "buy")):
        limit(maker, "ETH/USD", "sell" if side == "buy" else "buy", price, qty)
        assert taker.order(market="ETH/USD", side=side, type="market", quantity=qty).status_code == 201
    for i in range(10):  # in cents and ten-thousandths: no float anywhere near an amount
        q = (i % 4 + 1) * 3500 + i * 700
        qty = f"{q // 10_000}.{q % 10_000:04d}"
        ask, bid = 260_550 + i * 125, 260_380 - i * 110
        limit(maker, "ETH/USD", "sell", f"{ask // 100}.{ask % 100:02d}", qty)
        limit(maker, "ETH/USD", "buy", f"{bid // 100}.{bid % 100:02d}", qty)
    assert u.order(market="BTC/USDT", side="buy", price="42000.00", quantity="0.0500").status_code == 201
    open_market(page, web, u, "ETH-USD")
    expect(page.locator("[data-testid=asks] .level")).to_have_count(10)
    place(page, "2590.00", "1.5")
    page.get_by_role("button", name="Market", exact=True).click()
    page.fill("input[name=amount]", "0.8")
    page.press("input[name=amount]", "Enter")
    expect(toast(page, "Bought 0.8000 ETH")).to_be_visible()
    expect(page.locator(".orders tbody tr[data-order-id]")).to_have_count(2)
    page.mouse.move(0, 0)
    shot(page, "trade")
