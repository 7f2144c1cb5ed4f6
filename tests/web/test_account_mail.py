"""The pages of the mailed links in a real browser: sign up, the account page says the address is
not verified and mails a new link, the link's page verifies it (and takes the token out of the
address bar); "forgot password?" on the login page mails a reset link, whose page sets a new
password that then logs in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from dpg.store import db
from tests.api.client import PASSWORD, exchange, mailed_token
from tests.web.conftest import DESKTOP, PHONE, shot

pytestmark = pytest.mark.timeout(300)

EMAIL = "mail-pages@web.dpg"


@pytest.fixture(scope="module")
def site(pg_server: str, tmp_path_factory: pytest.TempPathFactory, vendored: None) -> Iterator[tuple[str, str]]:
    """``dpg up`` on a scratch database: (its URL, the database URL)."""
    url = db.create_scratch(pg_server, "dpg_test_web_mail")
    try:
        with exchange(url, tmp_path_factory.mktemp("web-mail")) as base:
            yield base, url
    finally:
        db.drop(url)


def shots(page: Any, name: str) -> None:
    """The page as it is now on the desktop (NAME.png) and on a phone (NAME-phone.png, no sideways scroll)."""
    shot(page, name)
    page.set_viewport_size(PHONE)
    width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    assert width <= PHONE["width"], (name, width)
    shot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)


def test_verify_the_address_and_reset_the_password_in_the_pages(page: Any, site: tuple[str, str]) -> None:
    web, url = site
    page.goto(f"{web}/account/signup")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[data-testid=signup] button[type=submit]")
    expect(page.locator("[data-testid=security]")).to_be_visible()

    page.goto(f"{web}/account")
    expect(page.locator("[data-testid=email-status]")).to_contain_text("is not verified yet")
    first = mailed_token(url, EMAIL, "verify-email")
    page.click("[data-testid=resend-verification]")
    expect(page.get_by_role("alert")).to_contain_text(f"A new link was mailed to {EMAIL}")
    token = mailed_token(url, EMAIL, "verify-email")
    assert token != first

    page.goto(f"{web}/verify-email?token={token}")
    expect(page.locator("[data-testid=email-verified]")).to_be_visible()
    assert "token" not in page.url
    shots(page, "verify-email")
    page.goto(f"{web}/verify-email?token={token}")  # once only
    expect(page.locator("[data-testid=verify-email] .notice")).to_contain_text("TOKEN_USED")
    page.goto(f"{web}/account")
    expect(page.locator("[data-testid=email-status]")).to_contain_text("is verified")
    shots(page, "account")

    # forgot password: from the login page
    page.get_by_role("button", name="Log out").click()
    page.click("[data-testid=forgot-link]")
    page.fill("form[data-testid=forgot] input[name=email]", EMAIL)
    page.click("form[data-testid=forgot] button[type=submit]")
    expect(page.locator("form[data-testid=forgot] .notice")).to_contain_text("a link to reset its password")
    shots(page, "forgot-password")
    reset = mailed_token(url, EMAIL, "reset-password")
    page.goto(f"{web}/reset-password?token={reset}")
    expect(page.locator("form[data-testid=reset]")).to_be_visible()
    assert "token" not in page.url
    shots(page, "reset-password")
    page.fill("input[name=password]", "a brand new password")
    page.fill("input[name=password2]", "not the same password")
    page.click("form[data-testid=reset] button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("differ")
    page.fill("input[name=password2]", "a brand new password")
    page.click("form[data-testid=reset] button[type=submit]")
    expect(page.locator("[data-testid=password-set]")).to_be_visible()

    page.goto(f"{web}/account/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", "a brand new password")
    page.click("form[data-testid=login] button[type=submit]")
    expect(page.locator("[data-testid=trade]")).to_be_visible()
