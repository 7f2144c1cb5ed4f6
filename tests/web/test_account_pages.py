"""The account and money pages in a real browser, against ``dpg up`` with custody on an anvil chain:
the confirmation step of a withdrawal (amount, fee, destination) and of allow-list changes, the
prompt to turn 2FA on where it is off, the warning for a withdraw key without an IP list, revoking
a key and cancelling all orders confirmed first; the security page (2FA status, set-up with copy
buttons, recovery codes copied, downloaded and "I have saved them", new recovery codes, 2FA turned
off, each with a code); the session shared by a second tab and ended in both by a logout or a
401; no sideways scroll at 390 px and a label on every control, on each of these pages and on
those of the mailed links (forgot password, verify the address, reset the password)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from dpg.chain.signer import dev_key
from tests.api.client import PASSWORD, Codes, User
from tests.chain.conftest import anvil_bin, artifacts  # noqa: F401 (fixtures of the custody exchange)
from tests.web.conftest import DESKTOP, PHONE, shot
from tests.web.test_wallet_proof import Custody, custody  # noqa: F401 (the custody exchange, this module's own)

pytestmark = pytest.mark.timeout(600)

DEST = dev_key(8).address.lower()
CLIPBOARD = ["clipboard-read", "clipboard-write"]

# every visible control without a name: no label with text, no aria-label(ledby), a button without text
UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => el.type !== "hidden" && el.getClientRects().length > 0)
  .filter((el) => {
    if ((el.getAttribute("aria-label") || "").trim()) return false;
    const by = el.getAttribute("aria-labelledby");
    if (by && by.split(/\\s+/).some((id) => document.getElementById(id)?.textContent.trim())) return false;
    if (el.tagName === "BUTTON") return !el.textContent.trim();
    return ![...(el.labels || [])].some((l) => l.textContent.trim());
  })
  .map((el) => el.outerHTML.slice(0, 160))"""


def log_in(page: Any, web: str, email: str) -> None:
    page.goto(f"{web}/account/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-testid=login] button[type=submit]")
    expect(page.locator("#who .user")).to_have_text(email)


def confirm_step(page: Any, kind: str) -> Any:
    dialog = page.locator(f"dialog[data-testid=confirm][data-kind={kind}]")
    expect(dialog).to_be_visible()
    return dialog


def document_width(page: Any) -> int:
    width: int = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    return width


def test_a_withdrawal_and_allow_list_changes_are_confirmed_and_2fa_is_prompted(page: Any, custody: Custody) -> None:  # noqa: F811
    web = custody.base
    u = User(web, "confirm@web.dpg")
    u.verify_email(custody.env["DPG_DATABASE_URL"])
    u.credit("ETH", "2")
    log_in(page, web, u.email)
    page.click("#nav a[data-nav=wallet]")

    # 2FA is off: the withdraw form and the allow-list form both prompt to turn it on
    for form in ("withdraw-form", "allow-add"):
        prompt = page.locator(f"form[data-testid={form}] [data-testid=twofa-prompt]")
        expect(prompt).to_contain_text("Two-factor authentication is off")
        expect(prompt.get_by_role("link", name="Turn on 2FA")).to_have_attribute("href", "/account/security")

    # a new address: chain, address, label and when it becomes usable, confirmed first; Back adds nothing
    page.fill("input[name=allow-address]", DEST)
    page.fill("input[name=allow-label]", "cold wallet")
    page.click("form[data-testid=allow-add] button[type=submit]")
    dialog = confirm_step(page, "allow-add")
    expect(dialog.locator("[data-testid=confirm-chain]")).to_have_text("Ethereum (chain id 31337)")
    expect(dialog.locator("[data-testid=confirm-address]")).to_have_text(DEST)
    expect(dialog.locator("[data-testid=confirm-label]")).to_have_text("cold wallet")
    expect(dialog.locator("[data-testid=confirm-usable]")).to_have_text("at once")  # DPG_ADDRESS_COOLDOWN=0 here
    expect(dialog).to_contain_text("your password alone can add addresses")
    dialog.get_by_role("button", name="Back").click()
    expect(dialog).to_have_count(0)
    assert u.http.get("/api/v1/wallet/addresses").json() == []
    page.click("form[data-testid=allow-add] button[type=submit]")
    confirm_step(page, "allow-add").get_by_role("button", name="Add the address").click()
    expect(page.locator(f"[data-testid=allow-list] tr[data-address='{DEST}']")).to_contain_text("cold wallet")
    assert [a["address"] for a in u.http.get("/api/v1/wallet/addresses").json()] == [DEST]

    # the withdrawal: amount, fee, what arrives and where, from the exchange's quote; Back sends nothing
    page.select_option("select[name=withdraw-asset]", "ETH")
    page.fill("input[name=withdraw-amount]", "0,25")
    page.select_option("select[name=withdraw-address]", DEST)
    page.click("form[data-testid=withdraw-form] button[type=submit]")
    dialog = confirm_step(page, "withdraw")
    expect(dialog.locator("[data-testid=confirm-amount]")).to_have_text("0.25 ETH")
    expect(dialog.locator("[data-testid=confirm-fee]")).to_have_text("0 ETH")
    expect(dialog.locator("[data-testid=confirm-receive]")).to_have_text("0.25 ETH")
    expect(dialog.locator("[data-testid=confirm-destination]")).to_have_text(f"cold wallet {DEST}")
    expect(dialog.locator("[data-testid=confirm-chain]")).to_have_text("Ethereum (chain id 31337)")
    expect(dialog).to_contain_text("your password alone can withdraw")
    assert page.evaluate(UNLABELLED) == []
    shot(page, "confirm-withdrawal")
    page.set_viewport_size(PHONE)
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert document_width(page) <= PHONE["width"]
    shot(page, "confirm-withdrawal-phone")
    page.set_viewport_size(DESKTOP)
    page.keyboard.press("Escape")  # as Back
    expect(dialog).to_have_count(0)
    assert u.http.get("/api/v1/withdrawals").json() == []
    expect(page.locator("[data-testid=wallet-available-ETH]")).to_have_text("2")

    page.click("form[data-testid=withdraw-form] button[type=submit]")
    confirm_step(page, "withdraw").get_by_role("button", name="Withdraw").click()
    expect(page.get_by_role("alert").filter(has_text="requested")).to_be_visible()
    [w] = u.http.get("/api/v1/withdrawals").json()
    assert (w["asset"], w["amount"].rstrip("0"), w["address"]) == ("ETH", "0.25", DEST)
    expect(page.locator("[data-testid=wallet-locked-ETH]")).to_have_text("0.25")

    # removing the address is confirmed too
    remove = page.locator(f"[data-testid=allow-list] tr[data-address='{DEST}'] [data-testid=allow-remove]")
    remove.click()
    dialog = confirm_step(page, "allow-remove")
    expect(dialog).to_contain_text("cold wallet")
    dialog.get_by_role("button", name="Back").click()
    assert len(u.http.get("/api/v1/wallet/addresses").json()) == 1
    remove.click()
    confirm_step(page, "allow-remove").get_by_role("button", name="Remove").click()
    expect(page.locator(f"[data-testid=allow-list] tr[data-address='{DEST}']")).to_have_count(0)
    assert u.http.get("/api/v1/wallet/addresses").json() == []


def test_a_withdraw_key_is_warned_and_confirmed_and_revoking_is_confirmed(page: Any, custody: Custody) -> None:  # noqa: F811
    web = custody.base
    u = User(web, "keys@web.dpg")
    page.context.grant_permissions(CLIPBOARD, origin=web)
    log_in(page, web, u.email)
    page.goto(f"{web}/account/api-keys")
    form = page.locator("form[data-testid=key-form]")
    page.fill("input[name=name]", "withdraw bot")
    expect(form.locator("[data-testid=withdraw-key-warning]")).to_have_count(0)
    expect(form.locator("[data-testid=twofa-prompt]")).to_have_count(0)

    # withdraw permission, no IP list, 2FA off: the warning and the 2FA prompt; an IP list removes the warning
    page.check("input[name=perm][value=withdraw]")
    expect(form.locator("[data-testid=withdraw-key-warning]")).to_contain_text("from any address")
    expect(form.locator("[data-testid=twofa-prompt]")).to_be_visible()
    page.fill("textarea[name=ip_allow]", "127.0.0.1")
    expect(form.locator("[data-testid=withdraw-key-warning]")).to_have_count(0)
    expect(form.locator("[data-testid=twofa-prompt]")).to_be_visible()
    page.fill("textarea[name=ip_allow]", "")
    expect(form.locator("[data-testid=withdraw-key-warning]")).to_be_visible()

    # the confirmation step: its permissions and IP list; Back creates nothing
    page.click("form[data-testid=key-form] button[type=submit]")
    dialog = confirm_step(page, "withdraw-key")
    expect(dialog.locator("[data-testid=confirm-permissions]")).to_have_text("read, withdraw")
    expect(dialog.locator("[data-testid=confirm-ips]")).to_have_text("any address")
    expect(dialog).to_contain_text("Without an IP allow-list this key can withdraw from any address")
    expect(dialog).to_contain_text("Two-factor authentication is off")
    dialog.get_by_role("button", name="Back").click()
    assert u.http.get("/api/v1/api-keys").json() == []
    page.fill("textarea[name=ip_allow]", "127.0.0.1, 10.0.0.0/8")
    page.click("form[data-testid=key-form] button[type=submit]")
    dialog = confirm_step(page, "withdraw-key")
    expect(dialog.locator("[data-testid=confirm-ips]")).to_have_text("127.0.0.1, 10.0.0.0/8")
    dialog.get_by_role("button", name="Create the key").click()

    # the secret shown once, with copy buttons
    secret = page.locator("[data-testid=key-secret]")
    expect(secret).to_be_visible()
    page.click("[data-copy='API secret']")
    expect(page.locator("[data-copy='API secret']")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret.inner_text()
    key = page.locator("[data-testid=key-id]").inner_text()
    [listed] = u.http.get("/api/v1/api-keys").json()
    assert (listed["key"], listed["permissions"], listed["ip_allow"]) == (key, ["read", "withdraw"],
                                                                           ["127.0.0.1/32", "10.0.0.0/8"])

    # a read-only key needs no confirmation
    page.fill("input[name=name]", "reader")
    page.click("form[data-testid=key-form] button[type=submit]")
    expect(page.locator("[data-testid=key-list] tr[data-key]")).to_have_count(2)
    expect(page.locator("dialog[data-testid=confirm]")).to_have_count(0)

    # revoking is confirmed: Back keeps the key, Revoke ends it
    row = page.locator(f"[data-testid=key-list] tr[data-key='{key}']")
    expect(row).to_contain_text("active")
    shot(page, "api-keys")
    row.get_by_role("button", name=re.compile("^Revoke")).click()
    dialog = confirm_step(page, "revoke-key")
    expect(dialog).to_contain_text(key)
    expect(dialog).to_contain_text("withdraw bot")
    dialog.get_by_role("button", name="Back").click()
    assert not u.http.get("/api/v1/api-keys").json()[0]["revoked"]
    row.get_by_role("button", name=re.compile("^Revoke")).click()
    confirm_step(page, "revoke-key").get_by_role("button", name="Revoke", exact=True).click()
    expect(row).to_contain_text("revoked")
    assert [k["revoked"] for k in u.http.get("/api/v1/api-keys").json()] == [True, False]

    # on a phone: one card per key, no sideways scroll (788 px wide before)
    page.set_viewport_size(PHONE)
    page.goto(f"{web}/account/api-keys")
    expect(page.locator("[data-testid=key-list] tr[data-key]")).to_have_count(2)
    assert document_width(page) <= PHONE["width"]
    page.locator("[data-testid=key-list]").scroll_into_view_if_needed()
    shot(page, "api-keys-phone")


def test_cancel_all_is_confirmed(page: Any, custody: Custody) -> None:  # noqa: F811
    web = custody.base
    u = User(web, "cancel-all@web.dpg")
    u.credit("USDT", "1000")
    for price in ("100", "101"):
        assert u.order(market="BTC/USDT", side="buy", price=price, quantity="0.1").status_code == 201
    log_in(page, web, u.email)
    page.goto(f"{web}/trade/BTC-USDT")
    page.click("[data-testid=cancel-all]")
    dialog = confirm_step(page, "cancel-all")
    expect(dialog.locator("[data-testid=confirm-count]")).to_have_text("2")
    dialog.get_by_role("button", name="Back").click()
    expect(dialog).to_have_count(0)
    assert len(u.http.get("/api/v1/orders/open", params={"market": "BTC/USDT"}).json()) == 2
    page.click("[data-testid=cancel-all]")
    confirm_step(page, "cancel-all").get_by_role("button", name="Cancel all").click()
    expect(page.locator("[data-testid=cancel-all]")).to_have_count(0)
    assert u.http.get("/api/v1/orders/open", params={"market": "BTC/USDT"}).json() == []


def test_security_page_turns_2fa_on_renews_the_codes_and_turns_it_off(page: Any, custody: Custody) -> None:  # noqa: F811
    web = custody.base
    u = User(web, "security@web.dpg")
    page.context.grant_permissions(CLIPBOARD, origin=web)
    log_in(page, web, u.email)
    page.goto(f"{web}/account")
    expect(page.locator("[data-testid=account-2fa]")).to_have_text("Off")
    page.get_by_role("link", name="Security: two-factor authentication").click()
    status = page.locator("[data-testid=totp-status]")
    expect(status).to_have_attribute("data-enabled", "false")
    expect(status).to_contain_text("Off")

    # set-up: the QR code and the secret with a copy button
    page.click("[data-testid=totp-start]")
    expect(page.locator("svg.qr")).to_be_visible()
    secret = page.locator("[data-testid=totp-secret]").inner_text()
    page.click("[data-copy='2FA secret']")
    expect(page.locator("[data-copy='2FA secret']")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shot(page, "two-factor-setup")
    page.set_viewport_size(PHONE)
    assert document_width(page) <= PHONE["width"]
    shot(page, "two-factor-setup-phone")
    page.set_viewport_size(DESKTOP)
    codes = Codes(secret)
    page.fill("input[name=code]", codes.next())
    page.press("input[name=code]", "Enter")
    expect(page.locator("[data-testid=totp-on]")).to_be_visible()
    expect(status).to_have_attribute("data-enabled", "true")

    # the recovery codes: copied, downloaded, and the page moves on only after "I have saved them"
    shown = page.locator("[data-testid=recovery-codes] li")
    expect(shown).to_have_count(10)
    old = shown.all_inner_texts()
    page.click("[data-copy='recovery codes']")
    expect(page.locator("[data-copy='recovery codes']")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()").split("\n") == old
    with page.expect_download() as got:
        page.click("[data-testid=codes-download]")
    assert got.value.suggested_filename == "dpg-recovery-codes.txt"
    text = Path(got.value.path()).read_text()
    assert all(c in text for c in old) and u.email in text
    done = page.locator("[data-testid=codes-done]")
    expect(done).to_be_disabled()
    shot(page, "recovery-codes")
    page.set_viewport_size(PHONE)
    assert document_width(page) <= PHONE["width"]
    shot(page, "recovery-codes-phone")
    page.set_viewport_size(DESKTOP)
    page.check("[data-testid=codes-saved]")
    expect(done).to_be_enabled()
    done.click()
    expect(page.locator("[data-testid=recovery-codes]")).to_have_count(0)
    expect(page.locator("[data-testid=codes-left]")).to_contain_text("10 of 10")
    assert u.http.get("/api/v1/auth/2fa").json() == {"enabled": True, "recovery_codes_left": 10}

    # new recovery codes, with a code from the app: the old ones are refused at login afterwards
    page.fill("input[name=renew-code]", codes.next())
    page.click("form[data-testid=totp-renew] button[type=submit]")
    expect(page.locator("[data-testid=security]")).to_contain_text("the old ones no longer work")
    expect(shown).to_have_count(10)
    new = shown.all_inner_texts()
    assert not set(new) & set(old)
    r = u.login(totp=old[0])
    assert (r.status_code, r.json()["code"]) == (401, "TOTP_INVALID")
    assert u.login(totp=new[0]).status_code == 200
    page.check("[data-testid=codes-saved]")
    page.click("[data-testid=codes-done]")
    expect(page.locator("[data-testid=codes-left]")).to_contain_text("9 of 10")
    assert page.evaluate(UNLABELLED) == []
    shot(page, "security")
    page.set_viewport_size(PHONE)
    assert document_width(page) <= PHONE["width"]
    shot(page, "security-phone")
    page.set_viewport_size(DESKTOP)

    # turned off with a code: a wrong one is refused, the right one turns it off
    page.fill("input[name=disable-code]", "000000" if codes.totp.now() != "000000" else "111111")
    page.click("form[data-testid=totp-disable] button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("TOTP_INVALID")
    expect(status).to_have_attribute("data-enabled", "true")
    page.fill("input[name=disable-code]", codes.next())
    page.click("form[data-testid=totp-disable] button[type=submit]")
    expect(status).to_have_attribute("data-enabled", "false")
    expect(page.get_by_role("alert")).to_have_text("2FA is off.")
    expect(page.locator("[data-testid=totp-start]")).to_be_visible()
    assert u.http.get("/api/v1/auth/2fa").json() == {"enabled": False, "recovery_codes_left": 0}
    assert u.login().status_code == 200


def test_a_second_tab_shares_the_session_and_a_logout_ends_both(browser: Any, custody: Custody) -> None:  # noqa: F811
    web = custody.base
    u = User(web, "tabs@web.dpg")
    context = browser.new_context(viewport=DESKTOP)
    errors: list[str] = []
    try:
        first = context.new_page()
        first.on("pageerror", lambda e: errors.append(str(e)))
        log_in(first, web, u.email)
        first.goto(f"{web}/wallet")
        expect(first.locator("[data-testid=wallet]")).to_be_visible()

        # a new tab of the same browser is signed in
        second = context.new_page()
        second.on("pageerror", lambda e: errors.append(str(e)))
        second.goto(f"{web}/account")
        expect(second.locator("[data-testid=account]")).to_contain_text(u.email)

        # logging out in the second tab ends the first one's session too, without a reload
        second.get_by_role("button", name="Log out").click()
        expect(second.locator("form[data-testid=login]")).to_be_visible()
        expect(first.locator("#who")).to_contain_text("Log in")
        expect(first.locator("[data-testid=wallet]")).to_have_count(0)
        expect(first.locator("#page")).to_contain_text("Log in")

        # signed in again in the first tab: the second follows; then the session revoked elsewhere
        # (by the API): the next call's 401 ends it in both tabs
        log_in(first, web, u.email)
        expect(second.locator("#who .user")).to_have_text(u.email)
        token = first.evaluate("JSON.parse(localStorage.getItem('dpg.session')).token")
        assert u.http.post("/api/v1/auth/logout", headers={"authorization": f"Bearer {token}"}).status_code == 200
        first.click("#nav a[data-nav=account]")
        expect(first.locator("#who")).to_contain_text("Log in")
        expect(second.locator("#who")).to_contain_text("Log in")
        assert first.evaluate("localStorage.getItem('dpg.session')") is None
    finally:
        context.close()
    assert not errors, errors


def test_no_sideways_scroll_at_390_and_every_control_labelled(browser: Any, custody: Custody) -> None:  # noqa: F811
    web = custody.base
    u = User(web, "narrow@web.dpg")
    u.verify_email(custody.env["DPG_DATABASE_URL"])
    u.credit("ETH", "1.5")
    r = u.http.post("/api/v1/wallet/addresses", json={"chain": "ethereum", "address": DEST,
                                                      "label": "a long label for my cold wallet"})
    assert r.status_code == 201, r.text
    r = u.http.post("/api/v1/api-keys", json={"name": "a bot with a long name",
                                              "permissions": ["read", "trade", "withdraw"],
                                              "ip_allow": ["203.0.113.7", "198.51.100.0/24", "2001:db8::/32"]})
    assert r.status_code == 201, r.text
    ready = {
        "account/login": "form[data-testid=login]",
        "account/signup": "form[data-testid=signup]",
        "account/forgot": "form[data-testid=forgot]",
        "verify-email?token=bogus": "[data-testid=verify-email] .notice.error",
        "reset-password?token=bogus": "form[data-testid=reset]",
        "account": "[data-testid=email-status] strong",
        "account/security": "[data-testid=totp-start]",
        "account/api-keys": "[data-testid=key-list] tr[data-key]",
        "wallet": "[data-testid=allow-list] tr[data-address]",
    }
    for viewport in (PHONE, DESKTOP):
        context = browser.new_context(viewport=viewport)
        try:
            page = context.new_page()
            for path, selector in ready.items():
                if path == "account":  # the pages before are seen logged out
                    log_in(page, web, u.email)
                page.goto(f"{web}/{path}")
                expect(page.locator(selector).first).to_be_visible()
                if path == "wallet":
                    expect(page.locator("[data-testid=wallet-available-ETH]")).to_have_text("1.5")
                assert document_width(page) <= viewport["width"], (path, document_width(page))
                assert page.evaluate(UNLABELLED) == [], path
        finally:
            context.close()
