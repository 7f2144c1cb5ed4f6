"""The web exchange in a real browser: sign up, 2FA with a QR code and recovery codes, log in with
2FA, API keys; the trade page places and cancels orders, cancels all, shows a fill as it happens,
parses "," amounts to exact base units, and shows stale data while its connection is down."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from tests.api.client import PASSWORD, Codes, User
from tests.web.conftest import DESKTOP, PHONE, Proxy, shot

pytestmark = pytest.mark.timeout(300)


def log_in(page: Any, web: str, email: str, totp: str | None = None) -> None:
    page.goto(f"{web}/account/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-testid=login] button[type=submit]")
    if totp is not None:
        expect(page.locator("input[name=totp]")).to_be_visible()
        page.fill("input[name=totp]", totp)
        page.click("form[data-testid=login] button[type=submit]")
    expect(page.locator("[data-testid=trade]")).to_be_visible()


def open_market(page: Any, web: str, market: str = "BTC-USDT") -> None:
    page.goto(f"{web}/trade/{market}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("[data-testid=available-USDT]")).to_be_visible()


def open_orders(user: User) -> list[dict[str, Any]]:
    return list(user.http.get("/api/v1/orders/open", params={"market": "BTC/USDT"}).json())


def test_sign_up_two_factor_log_in_and_api_keys(page: Any, web: str) -> None:
    email = "web-signup@test.dpg"
    page.goto(f"{web}/account/signup")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    shot(page, "signup")
    page.set_viewport_size(PHONE)
    shot(page, "signup-phone")
    page.set_viewport_size(DESKTOP)
    page.click("form[data-testid=signup] button[type=submit]")

    # 2FA: the QR code of the otpauth URI, the secret, a code computed from it, the recovery codes
    page.click("[data-testid=totp-start]")
    expect(page.locator("svg.qr")).to_be_visible()
    secret = page.locator("[data-testid=totp-secret]").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret)
    otp = Codes(secret)  # each code once: the exchange accepts a time step once
    page.fill("input[name=code]", otp.next())
    page.press("input[name=code]", "Enter")
    expect(page.locator("[data-testid=totp-on]")).to_be_visible()
    codes = page.locator("[data-testid=recovery-codes] li")
    expect(codes.first).to_be_visible()
    assert codes.count() >= 5

    # log out, then in again: the password alone is not enough
    page.goto(f"{web}/account")
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("form[data-testid=login]")).to_be_visible()
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-testid=login] button[type=submit]")
    expect(page.locator("input[name=totp]")).to_be_visible()
    shot(page, "login-2fa")
    page.set_viewport_size(PHONE)
    shot(page, "login-2fa-phone")
    page.set_viewport_size(DESKTOP)
    page.fill("input[name=totp]", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("form[data-testid=login] button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("TOTP_INVALID")
    page.fill("input[name=totp]", otp.next())
    page.click("form[data-testid=login] button[type=submit]")
    expect(page.locator("[data-testid=trade]")).to_be_visible()
    expect(page.locator("#who")).to_contain_text(email)

    # API keys: permissions and IP allow-list; the secret shown once; listed; revoked
    page.goto(f"{web}/account/api-keys")
    page.fill("input[name=name]", "my bot")
    page.check("input[name=perm][value=trade]")
    page.fill("textarea[name=ip_allow]", "127.0.0.1, 10.0.0.0/8")
    page.fill("input[name=totp]", otp.next())
    page.click("form[data-testid=key-form] button[type=submit]")
    expect(page.locator("[data-testid=key-secret]")).to_be_visible()
    key = page.locator("[data-testid=key-id]").inner_text()
    assert page.locator("[data-testid=key-secret]").inner_text()
    row = page.locator(f"[data-testid=key-list] tr[data-key='{key}']")
    expect(row).to_contain_text("read, trade")
    expect(row).to_contain_text("127.0.0.1/32, 10.0.0.0/8")
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Revoke").click()
    page.click("dialog[data-kind=revoke-key] [data-testid=confirm-yes]")
    expect(row).to_contain_text("revoked")
    page.goto(f"{web}/account/api-keys")
    expect(page.locator("[data-testid=key-secret]")).to_have_count(0)  # never shown again

    # the wallet and proof pages from the navigation, on an exchange without custody or a publication
    page.click("#nav a[data-nav=wallet]")
    expect(page.locator("[data-testid=deposit]")).to_contain_text("no custody chain")
    page.click("#nav a[data-nav=proof]")
    expect(page.locator("[data-testid=reserves]")).to_contain_text("No reserves report")


def test_amounts_are_parsed_to_exact_base_units(page: Any, web: str) -> None:
    page.goto(web)
    got = page.evaluate("""async () => {
        const { parseUnits, formatUnits, MarketMath } = await import("/static/app/money.js");
        const out = {};
        for (const [t, d] of [["0,1", 8], ["0.1", 8], ["1,23456789", 8], ["123456789012345.678901", 6],
                              [" 2 ", 2], [",5", 4], ["7.", 2], ["0.10000", 2], ["0.30000000000000004", 18]]) {
            out[`${t}|${d}`] = parseUnits(t, d).toString();
        }
        out.errors = ["1,2,3", "1.123456789", "abc", "", "-1", "1e5"].map((t) => {
            try { parseUnits(t, 8); return "accepted"; } catch (e) { return "rejected"; }
        });
        out.format = formatUnits(123456789n, 8);
        const m = new MarketMath({ market: "BTC/USDT", base: "BTC", quote: "USDT", price_decimals: 2,
            quantity_decimals: 4, tick_size: "0.01", lot_size: "0.0001", min_notional: "5.00" }, { BTC: 8, USDT: 6 });
        out.qtyFor = m.fmtQty(m.qtyFor(m.quoteAmount("1000"), m.price("30000.01")));
        out.notional = m.fmtQuote(m.notional(m.price("0.07"), m.qty("0.3")));
        return out;
    }""")
    assert got["0,1|8"] == got["0.1|8"] == "10000000"
    assert got["1,23456789|8"] == "123456789"
    assert got["123456789012345.678901|6"] == "123456789012345678901"  # beyond 2**53: no float
    assert (got[" 2 |2"], got[",5|4"], got["7.|2"], got["0.10000|2"]) == ("200", "5000", "700", "10")
    assert got["0.30000000000000004|18"] == "300000000000000040"
    assert got["errors"] == ["rejected"] * 6
    assert got["format"] == "1.23456789"
    assert got["qtyFor"] == "0.0333"  # 1000 / 30000.01 = 0.033333..., down to the lot
    assert got["notional"] == "0.021000"


def test_trade_place_cancel_cancel_all_and_a_live_fill(page: Any, web: str, exchange_url: str) -> None:
    alice, bob = User(exchange_url, "web-alice@test.dpg"), User(exchange_url, "web-bob@test.dpg")
    alice.credit("USDT", "100000")
    alice.credit("BTC", "1")
    bob.credit("USDT", "100000")
    log_in(page, web, alice.email)
    open_market(page, web)
    expect(page.locator("[data-testid=available-USDT]")).to_have_text("100,000.000000")

    # keyboard entry: B picks buy and focuses the price; "," as the decimal separator; Enter sends
    page.locator("body").press("b")
    expect(page.locator("input[name=price]")).to_be_focused()
    page.keyboard.type("40000,5")
    page.locator("input[name=amount]").fill("0,0123")
    expect(page.locator("[data-testid=total]")).to_contain_text("492.01 USDT")
    page.press("input[name=amount]", "Enter")
    expect(page.locator("[data-testid=toast]", has_text="Buy limit order placed: 0.0123 BTC")).to_be_visible()
    orders = open_orders(alice)
    assert [(o["side"], o["price"], o["quantity"]) for o in orders] == [("buy", "40000.50", "0.0123")]
    expect(page.locator("[data-testid=locked-USDT]")).to_have_text("492.006150")
    rows = page.locator(".orders tbody tr[data-order-id]")
    expect(rows).to_have_count(1)

    # cancel it from its row
    rows.first.get_by_role("button", name="Cancel").click()
    expect(rows).to_have_count(0)
    assert open_orders(alice) == []
    expect(page.locator("[data-testid=locked-USDT]")).to_have_text("0.000000")

    # two more, then cancel all
    for price in ("39000", "39500"):
        page.fill("input[name=price]", price)
        page.fill("input[name=amount]", "0.01")
        page.press("input[name=amount]", "Enter")
        expect(page.locator("[data-testid=toast]", has_text=f"at {int(price):,}.00 USDT")).to_be_visible()
    expect(rows).to_have_count(2)
    page.click("[data-testid=cancel-all]")
    page.click("dialog[data-kind=cancel-all] [data-testid=confirm-yes]")
    expect(rows).to_have_count(0)
    assert open_orders(alice) == []

    # a sell: S, the 25 % shortcut of 1 BTC, post-only; the book shows it, and a click fills the price
    page.locator("body").press("s")
    expect(page.locator("input[name=price]")).to_be_focused()
    page.keyboard.type("41000")
    page.click("button[data-pct='25']")
    expect(page.locator("input[name=amount]")).to_have_value("0.2500")
    page.fill("input[name=amount]", "0.0100")
    page.check("input[name=post_only]")
    page.press("input[name=amount]", "Enter")
    expect(page.locator("[data-testid=toast]", has_text="Sell post-only order placed")).to_be_visible()
    ask = page.locator("[data-testid=asks] .level[data-price='41000.00']")
    expect(ask).to_be_visible()
    page.fill("input[name=price]", "")
    ask.click()
    expect(page.locator("input[name=price]")).to_have_value("41000.00")
    expect(page.locator("input[name=amount]")).to_be_focused()

    # bob takes it through the API: the fill, the balances and the trade tape update live
    r = bob.order(market="BTC/USDT", side="buy", type="market", quantity="0.01")
    assert r.status_code == 201 and r.json()["status"] == "filled", r.text
    expect(page.locator("[data-testid=available-BTC]")).to_have_text("0.99000000")
    whole, frac = alice.balance("USDT")[0].split(".")
    expect(page.locator("[data-testid=available-USDT]")).to_have_text(f"{int(whole):,}.{frac}")
    expect(page.locator("[data-testid=trades] .row").first).to_contain_text("41,000.00")
    page.get_by_role("tab", name="Fills").click()
    fill = page.locator(".orders tbody tr.fill")
    expect(fill).to_have_count(1)
    expect(fill.first).to_contain_text("41,000.00")
    expect(fill.first).to_contain_text("0.0100")
    expect(fill.first).to_contain_text("maker")

    # a deeper book: depth bars, then the 1.00 grouping (100 ticks) merges levels
    for price, qty in (("40900.10", "0.0500"), ("40900.40", "0.0700"), ("40850.00", "0.1200"), ("40700.00", "0.2500")):
        assert bob.order(market="BTC/USDT", side="buy", price=price, quantity=qty).status_code == 201
    for price, qty in (("41100.00", "0.0300"), ("41250.00", "0.0800"), ("41400.00", "0.1500")):
        assert alice.order(market="BTC/USDT", side="sell", price=price, quantity=qty).status_code == 201
    bids = page.locator("[data-testid=bids] .level")
    expect(bids).to_have_count(4)
    expect(page.locator("[data-testid=asks] .level")).to_have_count(3)
    page.select_option("select[name=grouping]", "100")
    expect(bids).to_have_count(3)
    merged = page.locator("[data-testid=bids] .level[data-price='40900.00']")
    expect(merged).to_contain_text("0.1200")  # 0.0500 + 0.0700 at 40,900.00
    page.select_option("select[name=grouping]", "1")
    expect(bids).to_have_count(4)
    page.get_by_role("tab", name="Order history").click()
    expect(page.locator(".orders tbody")).to_contain_text("filled")

    # the same page at a phone's width
    page.set_viewport_size(PHONE)
    page.get_by_role("tab", name="Open orders").click()
    expect(page.locator("[data-testid=order-form]")).to_be_visible()
    expect(page.locator("[data-testid=mobile-bar]")).to_be_visible()


def test_stale_while_disconnected_then_resynced(page: Any, web: str, exchange_url: str, proxy: Proxy) -> None:
    carol = User(exchange_url, "web-carol@test.dpg")
    carol.credit("USDT", "10000")
    log_in(page, web, carol.email)
    open_market(page, web)
    conn = page.locator("#conn")

    # the connection drops: stale until it is back and resynced from a snapshot
    proxy.cut()
    try:
        expect(conn).to_have_attribute("data-state", "stale")
        expect(conn).to_contain_text("stale")
        r = carol.order(market="BTC/USDT", side="buy", price="12345.67", quantity="0.01")  # missed while down
        assert r.status_code == 201, r.text
        shot(page, "trade-stale")
    finally:
        proxy.restore()
    expect(conn).to_have_attribute("data-state", "live")
    expect(page.locator("[data-testid=bids] .level[data-price='12345.67']")).to_be_visible()
    expect(page.locator(".orders tbody tr[data-order-id]")).to_have_count(1)

    # a gap in the depth updates (a lost message): stale, a new snapshot, live again
    page.evaluate("""async () => {
        const { feed } = await import("/static/app/feed.js");
        const book = feed.book("depth:BTC/USDT");
        window.__states = [];
        feed.addEventListener("state", (e) => window.__states.push(e.detail.state));
        feed.receive({ channel: "depth:BTC/USDT", type: "update", seq: book.seq + 2, prev_seq: book.seq + 1,
                       bids: [["1.00", "5.0000"]], asks: [] });
    }""")
    expect(conn).to_have_attribute("data-state", "live")
    page.wait_for_function("window.__states.includes('stale') && window.__states.at(-1) === 'live'")
    expect(page.locator("[data-testid=bids] .level[data-price='1.00']")).to_have_count(0)  # never applied
