"""The operator's console in a real browser, on ``dpg up`` with a scratch database: an operator
(granted with ``dpg user grant-operator``, itself audited) signs in with 2FA and sees the health,
a surveillance alert with its evidence, the audit log (and its chain found broken once a row is
edited behind the trigger's back) and a verified backup, with nothing axe-core finds serious and
nothing wider than a phone. Its API refuses a normal user, an operator without 2FA, and the admin
token alone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from dpg.store import db
from dpg.surveillance.model import Alert
from dpg.surveillance.store import save
from tests.api.client import ADMIN, Codes, User, exchange
from tests.test_cli import dpg
from tests.web.conftest import DESKTOP, PHONE, shot
from tests.web.test_exchange import log_in
from tests.web.test_home_demo import axe_source, serious_violations  # noqa: F401 (axe-core's fixture)

pytestmark = pytest.mark.timeout(300)

CONSOLE_APIS = ("/api/v1/console/me", "/api/v1/console/health", "/api/v1/console/withdrawals",
                "/api/v1/console/alerts", "/api/v1/console/audit", "/api/v1/console/backups")
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console")


@pytest.fixture(scope="module")
def db_url(pg_server: str) -> Iterator[str]:
    url = db.create_scratch(pg_server, "dpg_test_console")
    try:
        yield url
    finally:
        db.drop(url)


@pytest.fixture(scope="module")
def exchange_url(db_url: str, data_dir: Path, vendored: None) -> Iterator[str]:
    """This module's exchange (the browser reaches it through the conftest's proxy), with its backups in
    ``data_dir/backups``."""
    with exchange(db_url, data_dir, DPG_BACKUP_DIR=str(data_dir / "backups")) as base:
        yield base


def operator_env(db_url: str, data_dir: Path) -> dict[str, str]:
    return {"DPG_DATABASE_URL": db_url, "DPG_DATA_DIR": str(data_dir), "DPG_ADMIN_TOKEN": ADMIN}


def two_factor(user: User) -> Codes:
    """Turn the user's 2FA on through the API; their codes from now on."""
    secret = user.http.post("/api/v1/auth/2fa/setup").json()["secret"]
    codes = Codes(secret)
    r = user.http.post("/api/v1/auth/2fa/enable", json={"code": codes.next()})
    assert r.status_code == 200, r.text
    return codes


def grant(db_url: str, data_dir: Path, email: str) -> dict[str, Any]:
    r = dpg("user", "grant-operator", email, "--json", env=operator_env(db_url, data_dir))
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def test_the_console_api_refuses_all_but_an_operator_with_2fa(exchange_url: str, db_url: str, data_dir: Path) -> None:
    trader = User(exchange_url, "trader@console.test")
    for path in CONSOLE_APIS:
        r = trader.http.get(path)
        assert (r.status_code, r.json()["code"]) == (403, "OPERATOR_ONLY"), path
    op = User(exchange_url, "op-no-2fa@console.test")
    assert grant(db_url, data_dir, op.email) == {"user_id": op.id, "email": op.email, "granted": True,
                                                 "two_factor": False}
    for path in CONSOLE_APIS:
        r = op.http.get(path)
        assert (r.status_code, r.json()["code"]) == (403, "TWO_FACTOR_REQUIRED"), path
    anonymous = trader.http.get("/api/v1/console/me", headers={"authorization": ""})
    assert anonymous.status_code == 401
    admin_only = trader.http.get("/api/v1/console/me", headers={"authorization": "", "x-dpg-admin-token": ADMIN})
    assert admin_only.status_code == 401
    two_factor(op)  # once 2FA is on, the same session gets in
    assert op.http.get("/api/v1/console/me").json()["email"] == op.email


def test_an_operator_with_2fa_sees_health_alerts_with_evidence_the_audit_log_and_backups(
        page: Any, web: str, exchange_url: str, db_url: str, data_dir: Path, axe_source: str) -> None:  # noqa: F811
    op = User(exchange_url, "op@console.test")
    codes = two_factor(op)
    assert grant(db_url, data_dir, op.email)["granted"] is True
    trader = User(exchange_url, "spoofer@console.test")
    r = op.http.post("/api/v1/admin/credits", headers={"x-dpg-admin-token": ADMIN, "x-dpg-operator": "cli:ops"},
                     json={"user_id": trader.id, "asset": "USDT", "amount": "250", "reference": "console-test-1"})
    assert r.status_code == 201, r.text
    now = time.time_ns()
    alert = Alert(f"spoofing:test:{trader.id}", "spoofing", "BTC/USDT", (trader.id,), now - 300 * 10**9, now,
                  {"orders_cancelled": 41, "cancel_ratio": "0.98", "largest_order": "12.5 BTC"}, 0.98,
                  "41 buys cancelled unfilled around a sell")
    with psycopg.connect(db_url, autocommit=True) as conn:  # stored as the surveillance stores what it finds
        assert [a.key for a in save(conn, [alert])[0]] == [alert.key]
    backups = data_dir / "backups"
    backups.mkdir(exist_ok=True)
    (backups / "dpg-20261201T120000Z.dump").write_bytes(b"x" * 1234)
    (backups / "dpg-20261201T120000Z.dump.verified.json").write_text(
        json.dumps({"ok": True, "verified_at": "2026-12-01T12:05:00+00:00", "detail": "restored and replayed"}))

    log_in(page, web, op.email, codes.next())
    page.goto(f"{web}/account")
    page.click("[data-testid=console-link]")
    expect(page.locator("[data-testid=console]")).to_contain_text("Signed in as operator op@console.test")

    health = page.locator("[data-testid=console-health]")
    expect(health.locator("[data-testid=journal-seq]")).to_contain_text("seq ")
    expect(health.locator("[data-testid=follower]")).to_contain_text("behind")
    expect(health).to_contain_text("No custody chain")  # this exchange runs without its chains
    expect(page.locator("[data-testid=console-withdrawals]")).to_contain_text("Nothing waits for a signature")

    alert = page.locator("[data-testid=console-alerts] tr[data-alert]")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text("spoofing")
    expect(alert).to_contain_text("BTC/USDT")
    expect(alert).to_contain_text(str(trader.id))
    alert.locator("[data-testid=evidence] summary").click()
    expect(alert.locator("pre.evidence")).to_be_visible()
    expect(alert.locator("pre.evidence")).to_contain_text('"orders_cancelled": 41')

    audit = page.locator("[data-testid=console-audit]")
    expect(audit.locator("[data-testid=audit-verify]")).to_have_attribute("data-ok", "true")
    expect(audit.locator("[data-testid=audit-verify]")).to_contain_text("Hash chain intact")
    granted = audit.locator("tr[data-seq]", has_text="user.grant_operator").filter(has_text=f"user_id={op.id}")
    expect(granted).to_have_count(1)
    expect(granted).to_contain_text("cli:")
    credit = audit.locator("tr[data-seq]", has_text="credit").filter(has_text="console-test-1")
    expect(credit).to_contain_text("admin-token")
    expect(credit).to_contain_text("by=cli:ops")
    expect(audit.locator("tr[data-seq]", has_text="settings.change")).to_have_count(1)  # the exchange's start

    backup = page.locator("[data-testid=console-backups] tr[data-backup='dpg-20261201T120000Z.dump']")
    expect(backup).to_contain_text("verified")
    expect(backup).to_contain_text("1,234")
    shot(page, "console")
    assert serious_violations(page, axe_source) == []
    page.set_viewport_size(PHONE)  # one card per row: nothing wider than a phone's screen
    expect(alert).to_contain_text("spoofing")
    assert page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)") <= PHONE["width"]
    shot(page, "console-phone")
    page.set_viewport_size(DESKTOP)

    # an edit made with the trigger switched off (as the database's superuser could) shows as a broken chain
    seq = int(credit.get_attribute("data-seq") or 0)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        conn.execute("UPDATE audit_log SET details = jsonb_set(details, '{amount}', '\"2500.000000\"') WHERE seq = %s",
                     (seq,))
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
    page.get_by_role("button", name="Refresh").click()
    expect(audit.locator("[data-testid=audit-verify]")).to_have_attribute("data-ok", "false")
    expect(audit.locator("[data-testid=audit-verify]")).to_contain_text(f"broken at row {seq}")


def test_the_page_tells_an_operator_without_2fa_why_the_console_is_closed(
        page: Any, web: str, exchange_url: str, db_url: str, data_dir: Path) -> None:
    op = User(exchange_url, "op-late@console.test")
    grant(db_url, data_dir, op.email)
    log_in(page, web, op.email)
    page.goto(f"{web}/console")
    expect(page.locator("[data-testid=console-closed]")).to_contain_text("two-factor authentication")
    expect(page.locator("[data-testid=console-health]")).to_have_count(0)
