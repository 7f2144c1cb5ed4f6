"""The first visit and the demo in a real browser, desktop (1440x900) and phone (390x844), against
``dpg up --demo`` with its embedded dev chains (in-process) and custody on.

The home page a visitor lands on: what DPG is, the markets with last price and 24 h change (in %
too), live, and how to start. The demo: its users funded by deposits on the dev chains, so the proof
page shows a published epoch with every ratio at 100 % (USD off chain); the market maker and the
taker are users of their own, so alice's fills are hers only; the log-in page names the demo users.
The router: logging in and going to the wallet at once, 20 times, never leaves the trade page stacked
over the wallet. The accessibility check (axe-core from npm, injected into each page) finds nothing
serious or critical; no page here scrolls sideways at 390 or 360 px.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.client import ADMIN, Process, free_port, until
from tests.web.conftest import ROOT, shot

pytestmark = pytest.mark.timeout(600)

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 360, "height": 780}
VIEWS = {"desktop": DESKTOP, "phone": PHONE}
MARKETS = ["BTC-USDT", "ETH-USDT", "BTC-USD", "ETH-USD"]
DEMO_PASSWORD = "demo-password"
WEB = ROOT / "src" / "dpg" / "web"
AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def demo(pg_server: str, tmp_path_factory: pytest.TempPathFactory, vendored: None) -> Iterator[str]:
    """``dpg up --demo`` as ``make up ARGS=--demo`` runs it: custody on the embedded in-process dev
    chains, the proof of reserves published by the exchange itself."""
    from dpg.store import db

    tmp = tmp_path_factory.mktemp("demo")
    url = db.create_scratch(pg_server, "dpg_test_demo")
    port = free_port()
    env = {"DPG_DATABASE_URL": url, "DPG_ADMIN_TOKEN": ADMIN, "DPG_DATA_DIR": str(tmp), "DPG_CUSTODY": "1",
           "DPG_DEV_CHAIN": "", "DPG_CHAINS": "", "DPG_POR_SECRET": "", "DPG_POR_REGISTRY": "", "DPG_POR_RPC": "",
           "DPG_POR_PUBLISH": "1"}
    proc = Process(["up", "--demo", "--port", str(port)], env, "DPG is up", timeout=180)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()
        db.drop(url)


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core, pinned in src/dpg/web/package.json (a test-only library: loaded from node_modules by
    the test, never served by the exchange)."""
    if not AXE.exists():
        subprocess.run(["make", "-s", "src/dpg/web/vendor/.installed"], cwd=ROOT, check=True, timeout=600)
    return AXE.read_text()


@pytest.fixture(params=list(VIEWS))
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def view(size: str, browser: Any) -> Iterator[Any]:
    """A fresh browser context at desktop or phone size; uncaught page errors fail the test."""
    context = browser.new_context(viewport=VIEWS[size])
    context.set_default_timeout(30_000)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert not errors, errors


def login_api(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    r = client.post("/api/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["authorization"] = f"Bearer {r.json()['token']}"
    return client


def log_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/account/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form[data-testid=login] button[type=submit]")
    expect(page.locator("[data-testid=trade]")).to_be_visible()


def funded(base: str) -> None:
    """Wait until the demo's deposits are credited (alice holds her ETH) and the books trade."""
    alice = login_api(base, "alice@demo.dpg")

    def eth() -> bool:
        return any(b["asset"] == "ETH" and Decimal(b["total"]) == 100 for b in alice.get("/api/v1/balances").json())

    until("alice's ETH deposit credited", eth, timeout=120)
    until("trades on every market",
          lambda: all(t["trades"] > 0 for t in httpx.get(f"{base}/api/v1/ticker").json()), timeout=60)


def serious_violations(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.evaluate(axe_source)  # run by the test's own channel: the page's CSP is not loosened
    found: list[dict[str, Any]] = page.evaluate("""async () => (await axe.run(document)).violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }))""")
    return found


def page_width(page: Any) -> int:
    return int(page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"))


# ---------------------------------------------------------------------- the home page


def test_home_shows_what_dpg_is_the_markets_live_and_how_to_start(view: Any, size: str, demo: str) -> None:
    funded(demo)
    view.goto(demo)
    expect(view.locator("[data-testid=home]")).to_be_visible()
    expect(view.locator("body")).to_have_attribute("data-page", "home")
    intro = view.locator("#home-title + .lead")
    for words in ("3 of 5", "proof of reserves", "matches orders"):
        expect(intro).to_contain_text(words)
    rows = view.locator("[data-testid=home-markets] tbody tr")
    expect(rows).to_have_count(4)
    for slug in MARKETS:
        quote = slug.split("-")[1]
        expect(view.locator(f"[data-testid=last-{slug}]")).to_have_text(re.compile(rf"^[\d,]+\.\d+ {quote}$"))
        expect(view.locator(f"[data-testid=change-pct-{slug}]")).to_have_text(re.compile(r"^[+-]?\d+\.\d\d %$"))
        # the percentage is the change over the price 24 h ago, rounded to 0.01 (read at one moment)
        last, change, pct = view.evaluate(f"""() => [
            document.querySelector('[data-testid=last-{slug}]').textContent,
            document.querySelector('[data-testid=change-{slug}]').textContent,
            document.querySelector('[data-testid=change-pct-{slug}]').textContent]""")
        last_d = Decimal(last.split()[0].replace(",", ""))
        change_d = Decimal(change.replace(",", ""))
        want = (change_d * 100 / (last_d - change_d)).quantize(Decimal("0.01"))
        assert Decimal(pct.split()[0]) == want, (slug, last, change, pct)
        link = view.locator(f"[data-testid=home-markets] a[href='/trade/{slug}']")
        expect(link).to_have_text(slug.replace("-", "/"))
    # live: every trade adds to the 24 h volume, and the page follows the ticker channel
    volume = view.locator("[data-testid=home-markets] tr[data-market='BTC/USDT'] td.vol")
    before = volume.inner_text()
    expect(volume).not_to_have_text(before, timeout=30_000)
    steps = view.locator("[data-testid=home-steps] li")
    expect(steps).to_have_count(4)
    for href in ("/account/signup", "/account/security", "/wallet", "/trade/BTC-USDT", "/proof"):
        expect(view.locator(f"[data-testid=home-steps] a[href='{href}']")).to_have_count(1)
    expect(view.locator("[data-testid=home] [data-testid=demo-logins]")).to_contain_text("alice@demo.dpg")
    assert page_width(view) <= VIEWS[size]["width"]
    shot(view, "home" if size == "desktop" else "home-phone")
    view.click("[data-testid=home-signup]")
    expect(view.locator("form[data-testid=signup]")).to_be_visible()


# ---------------------------------------------------------------------- the demo


def test_demo_login_page_names_the_demo_users_and_a_user_at_home_trades(view: Any, size: str, demo: str) -> None:
    r = httpx.get(f"{demo}/api/v1/demo")
    assert r.status_code == 200
    info = r.json()
    assert info["demo"] is True and info["password"] == DEMO_PASSWORD
    assert info["users"] == ["alice@demo.dpg", "bob@demo.dpg"]
    view.goto(f"{demo}/account/login")
    names = view.locator("form[data-testid=login] [data-testid=demo-logins]")
    expect(names).to_contain_text("alice@demo.dpg")
    expect(names).to_contain_text("bob@demo.dpg")
    expect(names).to_contain_text(DEMO_PASSWORD)
    expect(names).to_contain_text("maker@demo.dpg")
    assert page_width(view) <= VIEWS[size]["width"]
    shot(view, "login" if size == "desktop" else "login-phone")
    names.get_by_role("button", name="bob@demo.dpg").click()
    expect(view.locator("input[name=email]")).to_have_value("bob@demo.dpg")
    expect(view.locator("input[name=password]")).to_have_value(DEMO_PASSWORD)
    view.click("form[data-testid=login] button[type=submit]")
    # a logged-in user at "/" gets the trade page, as before the home page existed
    expect(view.locator("[data-testid=trade]")).to_be_visible()
    assert view.url == f"{demo}/"
    expect(view.locator("#who")).to_contain_text("bob@demo.dpg")


def test_an_exchange_without_the_demo_names_no_demo_users(page: Any, web: str) -> None:
    assert httpx.get(f"{web}/api/v1/demo").json() == {"demo": False}
    with page.expect_response(lambda r: r.url.endswith("/api/v1/demo")):
        page.goto(f"{web}/account/login")
    expect(page.locator("form[data-testid=login]")).to_be_visible()
    expect(page.locator("[data-testid=demo-logins]")).to_have_count(0)


def test_the_market_maker_and_the_taker_are_users_of_their_own(demo: str) -> None:
    funded(demo)
    alice = login_api(demo, "alice@demo.dpg")
    taker = login_api(demo, "taker@demo.dpg")
    maker = login_api(demo, "maker@demo.dpg")

    def trades(client: httpx.Client, market: str) -> list[dict[str, Any]]:
        return list(client.get("/api/v1/my-trades", params={"market": market, "limit": 1000}).json()["trades"])

    # the books trade, between the maker and the taker, not in alice's name
    assert trades(taker, "BTC/USDT") and trades(maker, "BTC/USDT")
    for market in MARKETS:
        assert trades(alice, market) == [], market
    # alice's own order: her fills are that order's, and only hers
    r = alice.post("/api/v1/orders", json={"market": "BTC/USDT", "side": "buy", "type": "market", "quantity": "0.002"})
    assert r.status_code == 201, r.text
    order = r.json()["order_id"]
    mine = until("alice's fill", lambda: trades(alice, "BTC/USDT"))
    assert {str(t["order_id"]) for t in mine} == {str(order)}
    assert sum(Decimal(t["quantity"]) for t in mine) == Decimal("0.002")
    for market in MARKETS[1:]:
        assert trades(alice, market) == [], market


def test_the_demo_proof_page_shows_a_published_epoch_covering_every_asset(view: Any, size: str, demo: str,
                                                                         axe_source: str) -> None:
    funded(demo)

    def latest() -> dict[str, Any] | None:
        listed = httpx.get(f"{demo}/api/v1/por/epochs").json()
        return listed[0] if listed and listed[0]["reportOk"] is not None else None

    first = until("the demo's own epoch published", latest, timeout=120)
    assert first["reportOk"] is True
    # an epoch marked now, by the operator's API, is published with every asset covered
    r = httpx.post(f"{demo}/api/v1/admin/por/epochs", headers={"x-dpg-admin-token": ADMIN})
    assert r.status_code == 201, r.text
    epoch = str(r.json()["epoch"])
    done = until("the epoch published", lambda: (e := latest()) and e["epoch"] == epoch and e, timeout=120)
    assert done["reportOk"] is True
    assert sorted(p["asset"] for p in done["published"]) == ["BTC", "ETH", "USDT"]
    report = httpx.get(f"{demo}/api/v1/por/report/{epoch}").json()
    for a in report["assets"]:
        assert Decimal(a["ratio"]) >= 1, a
        assert int(a["reservesTotal"]) >= int(a["liabilities"]) > 0, a
        assert {c["chain"] for c in a["reserves"] if int(c["holdings"]) > 0} == {"ethereum"}
    assert [u["asset"] for u in report["unpublished"]] == ["USD"]

    log_in(view, demo, "alice@demo.dpg")
    view.click("#nav a[data-nav=proof]")
    expect(view.locator("[data-testid=report-ok]")).to_have_text("every asset covered")
    expect(view.locator("[data-testid=reserves]")).to_contain_text(f"Epoch {epoch}")
    for asset in ("BTC", "ETH", "USDT"):
        ratio = view.locator(f"[data-testid=ratio-{asset}]")
        expect(ratio).to_have_text(re.compile(r"^\d{3,}\.\d\d %$"))
        assert Decimal(ratio.inner_text().split()[0].replace(",", "")) >= 100
    expect(view.locator("[data-testid=offchain-USD]")).to_contain_text("off chain")
    # alice's ETH, verified in the page against the root the registry holds on the dev chain
    view.select_option("select[name=epoch]", epoch)
    view.select_option("select[name=asset]", "ETH")
    view.click("[data-testid=verify-mine-go]")
    result = view.locator("[data-testid=verify-mine] [data-testid=proof-result]")
    expect(result).to_have_attribute("data-valid", "true")
    expect(result.locator("[data-testid=verdict]")).to_contain_text("Valid: 100 ETH of account")
    assert page_width(view) <= VIEWS[size]["width"]
    assert serious_violations(view, axe_source) == []  # with the proof's path shown too
    shot(view, "proof-demo" if size == "desktop" else "proof-demo-phone")


# ---------------------------------------------------------------------- phones: nothing sideways


@pytest.mark.parametrize("screen", [PHONE, NARROW], ids=["390", "360"])
def test_home_and_proof_do_not_scroll_sideways_on_a_phone(browser: Any, demo: str, screen: dict[str, int]) -> None:
    funded(demo)
    context = browser.new_context(viewport=screen)
    try:
        p = context.new_page()
        p.goto(demo)
        expect(p.locator("[data-testid=last-BTC-USDT]")).not_to_have_text("—")
        assert page_width(p) <= screen["width"]
        p.goto(f"{demo}/proof")
        expect(p.locator("[data-testid=report-ok]")).to_be_visible()
        expect(p.locator("[data-testid=ratio-chart] canvas").first).to_be_visible()
        assert page_width(p) <= screen["width"], "the proof page scrolls sideways"
        # logged in: the form to verify my balance as well
        p.goto(f"{demo}/account/login")
        p.fill("input[name=email]", "alice@demo.dpg")
        p.fill("input[name=password]", DEMO_PASSWORD)
        p.click("form[data-testid=login] button[type=submit]")
        expect(p.locator("[data-testid=trade]")).to_be_visible()
        p.click("#nav a[data-nav=proof]")
        expect(p.locator("[data-testid=verify-mine-go]")).to_be_visible()
        expect(p.locator("[data-testid=report-ok]")).to_be_visible()
        assert page_width(p) <= screen["width"], "the proof page scrolls sideways when logged in"
    finally:
        context.close()


# ---------------------------------------------------------------------- the router


def test_login_then_wallet_at_once_never_leaves_the_trade_page_stacked(view: Any, demo: str) -> None:
    """The trade page's mount waits for the markets; the user clicks Wallet meanwhile. The markets'
    answer is held until the wallet shows, so the trade page finishes mounting after navigation
    moved on, every time: it must not land over the wallet."""
    held: list[Any] = []

    def hold(route: Any) -> None:  # a function of its own: Playwright marks the handler it is given
        held.append(route)

    view.route("**/api/v1/markets", hold)
    for attempt in range(20):
        held.clear()
        view.goto(f"{demo}/account/login")
        view.fill("input[name=email]", "alice@demo.dpg")
        view.fill("input[name=password]", DEMO_PASSWORD)
        # logged in: the trade page is mounting, waiting for the markets, when Wallet is clicked
        with view.expect_request("**/api/v1/markets"):
            view.click("form[data-testid=login] button[type=submit]")
        assert view.url == f"{demo}/"
        view.click("#nav a[data-nav=wallet]")
        expect(view.locator("[data-testid=wallet]")).to_be_visible()
        until("the markets held", lambda: held, tick=lambda: view.wait_for_timeout(20))  # events dispatched
        # the trade page's mount goes on now, and asks for the recent trades once it is laid out
        with view.expect_response(lambda r: "/api/v1/trades?" in r.url):
            for route in held:
                route.continue_()
        expect(view.locator("[data-testid=wallet]")).to_be_visible()
        expect(view.locator("[data-testid=trade]")).to_have_count(0)
        assert view.locator("#page > *").count() == 1, attempt
        expect(view.locator("#nav a[data-nav=wallet]")).to_have_attribute("aria-current", "page")
    view.unroute("**/api/v1/markets", hold)


# ---------------------------------------------------------------------- accessibility

# (path, the element that shows the page is there, logged in?)
PAGES = {
    "home": ("/", "[data-testid=home-markets] tbody tr", False),
    "login": ("/account/login", "[data-testid=demo-logins]", False),
    "signup": ("/account/signup", "form[data-testid=signup]", False),
    "forgot": ("/account/forgot", "form[data-testid=forgot]", False),
    "verify-email": ("/verify-email?token=bogus", "[data-testid=verify-email] .notice.error", False),
    "reset-password": ("/reset-password?token=bogus", "form[data-testid=reset]", False),
    "trade": ("/trade/BTC-USDT", "[data-testid=trade]", True),
    "wallet": ("/wallet", "[data-testid=wallet]", True),
    "account": ("/account", "[data-testid=account]", True),
    "security": ("/account/security", "[data-testid=security]", True),
    "api-keys": ("/account/api-keys", "[data-testid=api-keys]", True),
    "proof": ("/proof", "[data-testid=report-ok]", True),
    "proof-visitor": ("/proof", "[data-testid=report-ok]", False),
}
@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_accessibility_violation(view: Any, size: str, demo: str, axe_source: str, name: str) -> None:
    path, ready, signed_in = PAGES[name]
    if signed_in:
        log_in(view, demo, "alice@demo.dpg")
    view.goto(f"{demo}{path}")
    expect(view.locator(ready).first).to_be_visible()
    view.wait_for_load_state("networkidle")
    found = serious_violations(view, axe_source)
    assert found == [], json.dumps(found, indent=1)


def test_axe_is_pinned_in_the_web_package() -> None:
    package = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    version = package["devDependencies"]["axe-core"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert lock["packages"]["node_modules/axe-core"]["version"] == version
    assert lock["packages"]["node_modules/axe-core"]["dev"] is True  # for the tests: never served
