"""Identity over HTTP against ``dpg up`` (issue 11, items 3, 6 and 10): e-mail verification and
password reset end to end through the outbox (sign up, read the mailed link, follow it through
the API); an unverified account may not withdraw nor add a withdrawal address; look-alike sign-ups
are refused; one TOTP code sent concurrently passes once; concurrent wrong passwords are locked out
at the limit. Every refusal is the JSON error shape."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from dpg.store import db
from tests.api.client import PASSWORD, Codes, User, dpg_cli, exchange, mailed_token, until

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def running(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """``dpg up`` on a scratch database: (its URL, the database URL, its data directory)."""
    tmp = tmp_path_factory.mktemp("identity")
    url = db.create_scratch(pg_server, "dpg_test_identity")
    try:
        with exchange(url, tmp, DPG_PUBLIC_URL="https://exchange.example") as base:
            yield base, url, tmp
    finally:
        db.drop(url)


def code(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["code"]


def test_sign_up_mails_a_link_that_verifies_the_address(running: tuple[str, str, Path]) -> None:
    base, url, tmp = running
    u = User(base, "ada@identity.dpg")
    assert u.http.get("/api/v1/auth/email").json() == {"email": "ada@identity.dpg", "verified": False}
    # what an unverified account may not do
    address = {"chain": "ethereum", "address": "0x" + "ab" * 20}
    assert code(u.http.post("/api/v1/wallet/addresses", json=address)) == (403, "EMAIL_NOT_VERIFIED")
    assert code(u.http.post("/api/v1/withdrawals", json={**address, "asset": "ETH", "amount": "1"})) == (
        403, "EMAIL_NOT_VERIFIED")
    # the mail, as dpg mail shows it: a link to the page on the public URL
    listed = dpg_cli({"DPG_DATABASE_URL": url, "DPG_DATA_DIR": str(tmp)}, "mail")
    assert listed.returncode == 0 and "ada@identity.dpg" in listed.stdout and "Verify your email" in listed.stdout
    mail_id = next(line.split()[0] for line in listed.stdout.splitlines() if "ada@identity.dpg" in line)
    shown = dpg_cli({"DPG_DATABASE_URL": url, "DPG_DATA_DIR": str(tmp)}, "mail", "show", mail_id)
    token = mailed_token(url, u.email, "verify-email")
    assert f"https://exchange.example/verify-email?token={token}" in shown.stdout

    anon = httpx.Client(base_url=base, timeout=30)
    assert code(anon.post("/api/v1/auth/verify-email", json={"token": "x" * 43})) == (400, "TOKEN_INVALID")
    assert code(anon.post("/api/v1/auth/verify-email", json={"token": "x" * 65})) == (422, "INVALID_REQUEST")
    r = anon.post("/api/v1/auth/verify-email", json={"token": token})
    assert r.status_code == 200 and r.json() == {"ok": True, "user_id": u.id}
    assert code(anon.post("/api/v1/auth/verify-email", json={"token": token})) == (400, "TOKEN_USED")
    assert u.http.get("/api/v1/auth/email").json()["verified"] is True
    assert code(u.http.post("/api/v1/auth/verify-email/resend")) == (409, "EMAIL_ALREADY_VERIFIED")
    # verified: the wallet's own checks come next (this exchange runs no chains)
    assert code(u.http.post("/api/v1/wallet/addresses", json=address)) == (404, "UNKNOWN_CHAIN")

    # a new link on request, which works as well
    v = User(base, "vic@identity.dpg")
    first = mailed_token(url, v.email, "verify-email")
    assert v.http.post("/api/v1/auth/verify-email/resend").status_code == 200
    second = mailed_token(url, v.email, "verify-email")
    assert second != first
    assert anon.post("/api/v1/auth/verify-email", json={"token": second}).status_code == 200
    assert code(anon.post("/api/v1/auth/verify-email/resend")) == (401, "SESSION_REQUIRED")


def test_forgot_password_and_reset_through_the_link(running: tuple[str, str, Path]) -> None:
    base, url, _ = running
    u = User(base, "bo@identity.dpg")
    other_session = httpx.Client(base_url=base, timeout=30)
    r = other_session.post("/api/v1/auth/login", json={"email": u.email, "password": PASSWORD})
    other_session.headers["authorization"] = f"Bearer {r.json()['token']}"
    anon = httpx.Client(base_url=base, timeout=30)

    unknown = anon.post("/api/v1/auth/password/forgot", json={"email": "nobody@identity.dpg"})
    known = anon.post("/api/v1/auth/password/forgot", json={"email": "BO@identity.dpg"})
    assert unknown.status_code == known.status_code == 202 and unknown.json() == known.json()
    token = mailed_token(url, u.email, "reset-password")

    assert code(anon.post("/api/v1/auth/password/reset", json={"token": token, "password": "short"})) == (
        400, "WEAK_PASSWORD")
    r = anon.post("/api/v1/auth/password/reset", json={"token": token, "password": "a brand new password"})
    assert r.status_code == 200, r.text
    # every session ended; the old password no longer works, the new one does
    assert code(u.http.get("/api/v1/balances")) == (401, "SESSION_INVALID")
    assert code(other_session.get("/api/v1/balances")) == (401, "SESSION_INVALID")
    assert code(anon.post("/api/v1/auth/login", json={"email": u.email, "password": PASSWORD})) == (
        401, "INVALID_CREDENTIALS")
    assert anon.post("/api/v1/auth/login", json={"email": u.email, "password": "a brand new password"}
                     ).status_code == 200
    # the link works once
    assert code(anon.post("/api/v1/auth/password/reset", json={"token": token, "password": "third password!"})
                ) == (400, "TOKEN_USED")
    # and for an hour: this one is made an hour old
    assert anon.post("/api/v1/auth/password/forgot", json={"email": u.email}).status_code == 202
    late = until_new_token(url, u.email, token)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE email_tokens SET expires_at = now() - interval '1 second'"
                     " WHERE purpose = 'reset' AND used_at IS NULL")
    assert code(anon.post("/api/v1/auth/password/reset", json={"token": late, "password": "third password!"})) == (
        400, "TOKEN_EXPIRED")
    with psycopg.connect(url) as conn:
        [(hashes,)] = conn.execute("SELECT count(*) FROM email_tokens WHERE token_hash = sha256(%s::bytea)",
                                   (late.encode(),)).fetchall()
    assert hashes == 1  # stored as its SHA-256


def until_new_token(url: str, to: str, old: str) -> str:
    return str(until("a new reset link", lambda: (t := mailed_token(url, to, "reset-password")) != old and t))


def test_look_alike_sign_ups_are_refused(running: tuple[str, str, Path]) -> None:
    base, _, _ = running
    anon = httpx.Client(base_url=base, timeout=30)
    User(base, "carla@identity.dpg")
    cases = [("\uff43arla@identity.dpg", 409, "EMAIL_TAKEN"),  # full-width c
             ("\u0441arla@identity.dpg", 400, "INVALID_EMAIL"),  # a Cyrillic es among Latin letters
             ("CARLA@IDENTITY.DPG", 409, "EMAIL_TAKEN")]
    for email, status, name in cases:
        assert code(anon.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})) == (status, name)
    User(base, "ape@identity.dpg")
    r = anon.post("/api/v1/auth/signup", json={"email": "\u0430\u0440\u0435@identity.dpg", "password": PASSWORD})
    assert code(r) == (409, "EMAIL_LOOKALIKE")


def test_one_totp_code_sent_concurrently_passes_once(running: tuple[str, str, Path]) -> None:
    base, _, _ = running
    u = User(base, "dora@identity.dpg")
    secret = u.http.post("/api/v1/auth/2fa/setup").json()["secret"]
    codes = Codes(secret)
    assert u.http.post("/api/v1/auth/2fa/enable", json={"code": codes.next()}).status_code == 200
    totp = codes.next()

    async def create_keys() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=dict(u.http.headers)) as client:
            return list(await asyncio.gather(*(client.post("/api/v1/api-keys", json={
                "name": f"k{i}", "permissions": ["read"], "totp": totp}) for i in range(6))))

    got = asyncio.run(create_keys())
    assert sorted(r.status_code for r in got) == [201] + [401] * 5
    assert {r.json()["code"] for r in got if r.status_code == 401} == {"TOTP_REUSED"}
    assert len(u.http.get("/api/v1/api-keys").json()) == 1


def test_concurrent_wrong_passwords_are_locked_out_at_the_limit(running: tuple[str, str, Path]) -> None:
    base, _, _ = running
    u = User(base, "eve@identity.dpg")

    async def guess() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            return list(await asyncio.gather(*(client.post("/api/v1/auth/login", json={
                "email": u.email, "password": f"guess number {i}"}) for i in range(40))))

    got = asyncio.run(guess())
    assert sorted(code(r) for r in got) == [(401, "INVALID_CREDENTIALS")] * 10 + [(429, "TOO_MANY_ATTEMPTS")] * 30
    # the owner's sessions are untouched; from this address, even the right password waits
    assert u.http.get("/api/v1/balances").status_code == 200
    assert code(httpx.post(f"{base}/api/v1/auth/login", json={"email": u.email, "password": PASSWORD})) == (
        429, "TOO_MANY_ATTEMPTS")


def test_the_link_pages_are_served(running: tuple[str, str, Path]) -> None:
    base, _, _ = running
    for path in ("/verify-email?token=abc", "/reset-password?token=abc", "/account/forgot"):
        r = httpx.get(base + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
