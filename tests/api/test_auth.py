"""Accounts on the real PostgreSQL (and the replay guard on the real Redis): sign-up, login with
password and TOTP, recovery codes, sessions, API keys and the checks of a signed request, in the
order the API promises; secrets are stored sealed and never logged."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyotp
import pytest
from argon2 import PasswordHasher
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

from dpg.identity import (
    Accounts,
    AuthError,
    MemoryReplayGuard,
    RedisReplayGuard,
    ReplayGuard,
    SecretBox,
)
from dpg.mail import Mailer

# Cheap argon2 parameters keep the tests fast; one test runs the defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"
REDIS_URL = os.environ.get("DPG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Clock:
    """Epoch seconds that move only when told."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    @property
    def ms(self) -> int:
        return int(self.t * 1000)


Body = Callable[[Accounts], Awaitable[None]]


def run(
    pg_url: str,
    body: Body,
    *,
    clock: Clock | None = None,
    guard: ReplayGuard | None = None,
    hasher: PasswordHasher | None = FAST,
    redis_prefix: str | None = None,
    **kw: Any,
) -> None:
    """Run ``body`` on new Accounts over a pool of ``pg_url``; the replay guard is ``guard``, else
    Redis under ``redis_prefix`` when given, else one in memory."""

    async def main() -> None:
        redis = Redis.from_url(REDIS_URL) if redis_prefix is not None else None
        try:
            if guard is not None:
                replay: ReplayGuard = guard
            elif redis is not None and redis_prefix is not None:
                replay = RedisReplayGuard(redis, redis_prefix)
            else:
                replay = MemoryReplayGuard()
            async with AsyncConnectionPool(pg_url, min_size=1, max_size=4, open=False) as pool:
                accounts = Accounts(
                    pool,
                    SecretBox(os.urandom(32)),
                    replay,
                    clock=clock if clock is not None else Clock(),
                    hasher=hasher,
                    mailer=Mailer(pool),
                    **kw,
                )
                await body(accounts)
                await accounts.drain()
        finally:
            if redis is not None:
                await redis.aclose()

    asyncio.run(main())


async def rejects(code: str, status: int, aw: Awaitable[Any]) -> AuthError:
    with pytest.raises(AuthError) as info:
        await aw
    assert (info.value.code, info.value.status) == (code, status), info.value
    return info.value


def sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def fetch(pg_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(sql, args).fetchall()


async def enrol(acc: Accounts, user_id: int, clock: Clock) -> tuple[pyotp.TOTP, list[str]]:
    secret, _ = await acc.totp_begin(user_id)
    totp = pyotp.TOTP(secret)
    return totp, await acc.totp_enable(user_id, totp.at(clock.t))


# --- users and sessions ---------------------------------------------------------------------


def test_sign_up_login_session_expiry_and_logout(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("  Alice@Example.COM ", PASSWORD)
        assert uid == 1  # the first ledger account
        assert await acc.sign_up("bob@example.com", PASSWORD) == 2

        token, expires = await acc.login("alice@example.com", PASSWORD, None, "198.51.100.7")
        assert expires == clock.t + 3600
        assert await acc.session_user(token) == uid

        clock.t += 3599
        assert await acc.session_user(token) == uid
        clock.t += 1
        await rejects("SESSION_EXPIRED", 401, acc.session_user(token))

        token2, _ = await acc.login("ALICE@example.com", PASSWORD, None, "198.51.100.7")
        assert token2 != token
        assert await acc.session_user(token2) == uid
        await acc.logout(token2)
        await rejects("SESSION_INVALID", 401, acc.session_user(token2))
        await acc.logout(token2)  # again: nothing happens
        await rejects("SESSION_INVALID", 401, acc.session_user(secrets.token_urlsafe(32)))

    run(pg_url, body, clock=clock, session_ttl_s=3600)
    users = fetch(pg_url, "SELECT id, email, password_hash FROM users ORDER BY id")
    assert [(u[0], u[1]) for u in users] == [(1, "alice@example.com"), (2, "bob@example.com")]
    assert all(u[2].startswith("$argon2id$") and PASSWORD not in u[2] for u in users)
    sessions = fetch(pg_url, "SELECT token_hash, user_id, ip, revoked_at IS NOT NULL FROM sessions ORDER BY created_at")
    assert [(s[1], s[2], s[3]) for s in sessions] == [(1, "198.51.100.7", False), (1, "198.51.100.7", True)]
    assert all(len(s[0]) == 32 for s in sessions)  # only the SHA-256 of a token is stored


def test_default_argon2_parameters(pg_url: str) -> None:
    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("carol@example.com", PASSWORD)
        token, _ = await acc.login("carol@example.com", PASSWORD, None, "127.0.0.1")
        assert await acc.session_user(token) == uid

    run(pg_url, body, hasher=None)
    [(h,)] = fetch(pg_url, "SELECT password_hash FROM users")
    assert h.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_login_rehashes_with_new_parameters(pg_url: str) -> None:
    run(pg_url, lambda acc: acc.sign_up("dave@example.com", PASSWORD))
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)

    async def body(acc: Accounts) -> None:
        await acc.login("dave@example.com", PASSWORD, None, "127.0.0.1")

    run(pg_url, body, hasher=stronger)
    [(h,)] = fetch(pg_url, "SELECT password_hash FROM users")
    assert "m=2048,t=2,p=1" in h


def test_sign_up_rejections(pg_url: str) -> None:
    async def body(acc: Accounts) -> None:
        await acc.sign_up("erin@example.com", PASSWORD)
        await rejects("EMAIL_TAKEN", 409, acc.sign_up("Erin@Example.com", "another password"))
        await rejects("WEAK_PASSWORD", 400, acc.sign_up("frank@example.com", "x" * 9))
        await rejects("WEAK_PASSWORD", 400, acc.sign_up("frank@example.com", "x" * 129))
        assert await acc.sign_up("frank@example.com", "x" * 10) > 0
        assert await acc.sign_up("grace@example.com", "x" * 128) > 0
        for bad in [
            "",
            "plain",
            "no-dot@localhost",
            "two@@example.com",
            "a@b@example.com",
            "@example.com",
            "a@.example.com",
            "a@example.com.",
            "a@example..com",
            "sp ace@example.com",
            "a@exa\tmple.com",
            "x" * 245 + "@example.com",
        ]:
            await rejects("INVALID_EMAIL", 400, acc.sign_up(bad, PASSWORD))

    run(pg_url, body)


def test_wrong_password_and_unknown_email_look_alike_and_are_throttled(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        await acc.sign_up("heidi@example.com", PASSWORD)
        wrong = await rejects("INVALID_CREDENTIALS", 401, acc.login("heidi@example.com", "wrong password", None, "ip"))
        unknown = await rejects("INVALID_CREDENTIALS", 401, acc.login("nobody@example.com", PASSWORD, None, "ip"))
        malformed = await rejects("INVALID_CREDENTIALS", 401, acc.login("not-an-email", PASSWORD, None, "ip"))
        assert wrong.reason == unknown.reason == malformed.reason
        await rejects("INVALID_CREDENTIALS", 401, acc.login("heidi@example.com", PASSWORD + "x" * 200, None, "ip"))
        await rejects("INVALID_CREDENTIALS", 401, acc.login("HEIDI@example.com", "wrong again!", None, "ip"))

        # Three failures in the window (max_failures=3): even the right password waits.
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.login("heidi@example.com", PASSWORD, None, "ip"))
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.login("Heidi@example.com", "wrong password", None, "ip"))
        clock.t += 60
        await acc.login("heidi@example.com", PASSWORD, None, "ip")
        # A success clears the count.
        await rejects("INVALID_CREDENTIALS", 401, acc.login("heidi@example.com", "wrong password", None, "ip"))
        await acc.login("heidi@example.com", PASSWORD, None, "ip")

    run(pg_url, body, clock=clock, max_failures=3, failure_window_s=60)


# --- TOTP -----------------------------------------------------------------------------------


def test_totp_enrolment_and_login(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("ivan@example.com", PASSWORD)
        assert not await acc.totp_enabled(uid)
        await rejects("TOTP_NOT_STARTED", 409, acc.totp_enable(uid, "123456"))

        secret, uri = await acc.totp_begin(uid)
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert uri.startswith("otpauth://totp/DPG:ivan%40example.com?")
        assert f"secret={secret}" in uri and "issuer=DPG" in uri
        assert not await acc.totp_enabled(uid)
        # Until enabled, login needs no code.
        await acc.login("ivan@example.com", PASSWORD, None, "ip")

        # Beginning again replaces the secret: a code of the first one no longer enables.
        secret2, _ = await acc.totp_begin(uid)
        totp = pyotp.TOTP(secret2)
        await rejects("TOTP_INVALID", 401, acc.totp_enable(uid, pyotp.TOTP(secret).at(clock.t)))
        await rejects("TOTP_INVALID", 401, acc.totp_enable(uid, "12345a"))
        codes = await acc.totp_enable(uid, totp.at(clock.t))
        assert len(codes) == 10 and len(set(codes)) == 10
        assert all(re.fullmatch(r"[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}", c) for c in codes)
        assert await acc.totp_enabled(uid)
        await rejects("TOTP_ALREADY_ENABLED", 409, acc.totp_begin(uid))
        await rejects("TOTP_ALREADY_ENABLED", 409, acc.totp_enable(uid, totp.at(clock.t)))

        await rejects("TOTP_REQUIRED", 401, acc.login("ivan@example.com", PASSWORD, None, "ip"))
        await rejects("TOTP_REQUIRED", 401, acc.login("ivan@example.com", PASSWORD, " ", "ip"))
        wrong = f"{(int(totp.at(clock.t)) + 1) % 1_000_000:06d}"
        await rejects("TOTP_INVALID", 401, acc.login("ivan@example.com", PASSWORD, wrong, "ip"))
        # The password is checked first: a wrong one with a right code is still wrong.
        await rejects("INVALID_CREDENTIALS", 401, acc.login("ivan@example.com", "wrong pass!", totp.at(clock.t), "ip"))

        # The code that enabled 2FA is used up; the next step's code logs in, once.
        await rejects("TOTP_REUSED", 401, acc.login("ivan@example.com", PASSWORD, totp.at(clock.t), "ip"))
        clock.t += 30
        token, _ = await acc.login("ivan@example.com", PASSWORD, totp.at(clock.t), "ip")
        assert await acc.session_user(token) == uid
        await rejects("TOTP_REUSED", 401, acc.login("ivan@example.com", PASSWORD, totp.at(clock.t), "ip"))
        # valid_window=1: the next 30 s step passes; then the previous one is older than the last used.
        await acc.login("ivan@example.com", PASSWORD, totp.at(clock.t + 30), "ip")
        await rejects("TOTP_REUSED", 401, acc.login("ivan@example.com", PASSWORD, totp.at(clock.t - 30), "ip"))
        clock.t += 90  # two steps after the last used one
        await acc.login("ivan@example.com", PASSWORD, totp.at(clock.t - 30), "ip")  # the previous step passes
        await rejects("TOTP_INVALID", 401, acc.login("ivan@example.com", PASSWORD, totp.at(clock.t - 90), "ip"))

    run(pg_url, body, clock=clock)
    [(stored, enabled, n)] = fetch(pg_url, "SELECT totp_secret, totp_enabled, cardinality(recovery_codes) FROM users")
    assert enabled and n == 10
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", stored) and len(stored) > 60  # sealed, not the 32-char secret


def test_check_totp(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("judy@example.com", PASSWORD)
        await acc.check_totp(uid, None)  # TOTP off: passes
        await acc.check_totp(uid, "000000")
        totp, codes = await enrol(acc, uid, clock)
        missing = await rejects("TOTP_REQUIRED", 401, acc.check_totp(uid, None))
        assert '"totp" field' in missing.reason  # the reason names the field to fill
        await rejects("TOTP_REQUIRED", 401, acc.check_totp(uid, ""))
        await rejects("TOTP_INVALID", 401, acc.check_totp(uid, "abcdef"))
        await rejects("TOTP_INVALID", 401, acc.check_totp(uid, totp.at(clock.t - 300)))
        await rejects("TOTP_REUSED", 401, acc.check_totp(uid, totp.at(clock.t)))  # it enabled 2FA
        clock.t += 30
        await acc.check_totp(uid, totp.at(clock.t))
        clock.t += 30
        await acc.check_totp(uid, " " + totp.at(clock.t)[:3] + " " + totp.at(clock.t)[3:])
        # Recovery codes stand in only at login.
        await rejects("TOTP_INVALID", 401, acc.check_totp(uid, codes[0]))
        await rejects("USER_UNKNOWN", 404, acc.check_totp(999, None))

    run(pg_url, body, clock=clock)


def test_totp_failures_are_throttled(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("kate@example.com", PASSWORD)
        totp, _ = await enrol(acc, uid, clock)
        wrong = f"{(int(totp.at(clock.t)) + 7) % 1_000_000:06d}"
        await rejects("TOTP_INVALID", 401, acc.check_totp(uid, wrong))
        await rejects("TOTP_INVALID", 401, acc.login("kate@example.com", PASSWORD, wrong, "ip"))
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.login("kate@example.com", PASSWORD, totp.at(clock.t), "ip"))
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.check_totp(uid, totp.at(clock.t)))
        clock.t += 61
        await acc.login("kate@example.com", PASSWORD, totp.at(clock.t), "ip")

    run(pg_url, body, clock=clock, max_failures=2, failure_window_s=60)


def test_recovery_code_stands_in_once(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("leo@example.com", PASSWORD)
        _, codes = await enrol(acc, uid, clock)
        token, _ = await acc.login("leo@example.com", PASSWORD, codes[3], "ip")
        assert await acc.session_user(token) == uid
        await rejects("TOTP_INVALID", 401, acc.login("leo@example.com", PASSWORD, codes[3], "ip"))
        # Case, spaces and hyphens do not matter.
        await acc.login("leo@example.com", PASSWORD, " " + codes[7].replace("-", "").upper() + " ", "ip")
        await rejects("TOTP_INVALID", 401, acc.login("leo@example.com", PASSWORD, codes[7], "ip"))
        await rejects("TOTP_INVALID", 401, acc.login("leo@example.com", PASSWORD, "0000-0000-0000", "ip"))
        await acc.login("leo@example.com", PASSWORD, codes[0], "ip")

    run(pg_url, body, clock=clock)
    [(n,)] = fetch(pg_url, "SELECT cardinality(recovery_codes) FROM users")
    assert n == 7


# --- API keys -------------------------------------------------------------------------------


def test_api_key_create_list_revoke(pg_url: str) -> None:
    clock = Clock()
    created: dict[str, str] = {}

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("mallory@example.com", PASSWORD)
        key, secret = await acc.create_api_key(uid, " bot 1 ", ["trade", "read"], ["10.0.0.1", "192.168.0.0/16"], None)
        created[key] = secret
        assert re.fullmatch(r"dpg_[A-Za-z0-9_-]{32}", key)
        assert len(secret) == 43
        clock.t += 1
        key2, secret2 = await acc.create_api_key(uid, "reader", {"read"}, [], None)
        created[key2] = secret2

        listed = await acc.list_api_keys(uid)
        assert [k["key"] for k in listed] == [key, key2]
        first = listed[0]
        assert first["name"] == "bot 1"
        assert first["permissions"] == ["read", "trade"]
        assert first["ip_allow"] == ["10.0.0.1/32", "192.168.0.0/16"]
        assert first["revoked"] is False and first["last_used_at"] is None
        assert first["created_at"].timestamp() == clock.t - 1
        assert set(first) == {"key", "name", "permissions", "ip_allow", "created_at", "revoked", "last_used_at"}
        assert secret not in repr(listed) and secret2 not in repr(listed)

        await acc.revoke_api_key(uid, key)
        await acc.revoke_api_key(uid, key)  # again: fine
        listed = await acc.list_api_keys(uid)
        assert [k["revoked"] for k in listed] == [True, False]
        await rejects("KEY_UNKNOWN", 404, acc.revoke_api_key(uid, "dpg_" + "x" * 32))

    run(pg_url, body, clock=clock)
    rows = fetch(pg_url, "SELECT key, secret_enc FROM api_keys")
    assert len(rows) == 2
    for key, sealed in rows:
        assert created[key].encode() not in bytes(sealed)


def test_api_key_validation(pg_url: str) -> None:
    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("nina@example.com", PASSWORD)
        for perms in ([], ["admin"], ["read", "admin"], "read", ["READ"]):
            await rejects("INVALID_PERMISSIONS", 400, acc.create_api_key(uid, "k", perms, [], None))
        for allow in (["10.0.0.300"], ["nope"], ["10.0.0.0/33"], "10.0.0.1", ["10.0.0.1", ""]):
            await rejects("INVALID_IP", 400, acc.create_api_key(uid, "k", ["read"], allow, None))
        for name in ("", "   ", "x" * 65, "line\nbreak", "tab\there"):
            await rejects("INVALID_NAME", 400, acc.create_api_key(uid, name, ["read"], [], None))
        key, _ = await acc.create_api_key(uid, "x" * 64, ["read", "trade", "withdraw"], ["2001:db8::1", "::/0"], None)
        [k] = await acc.list_api_keys(uid)
        assert k["key"] == key and k["ip_allow"] == ["2001:db8::1/128", "::/0"]
        # 10.1.2.3/8 is not a network address; strict=False keeps the network.
        await acc.create_api_key(uid, "loose", ["read"], ["10.1.2.3/8"], None)
        loose = [k for k in await acc.list_api_keys(uid) if k["name"] == "loose"]
        assert loose[0]["ip_allow"] == ["10.0.0.0/8"]

    run(pg_url, body)


def test_at_most_twenty_live_keys(pg_url: str) -> None:
    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("oscar@example.com", PASSWORD)
        keys = [(await acc.create_api_key(uid, f"k{i}", ["read"], [], None))[0] for i in range(20)]
        await rejects("TOO_MANY_KEYS", 409, acc.create_api_key(uid, "one more", ["read"], [], None))
        await acc.revoke_api_key(uid, keys[5])
        await acc.create_api_key(uid, "one more", ["read"], [], None)
        await rejects("TOO_MANY_KEYS", 409, acc.create_api_key(uid, "and another", ["read"], [], None))
        # Another user has their own twenty.
        other = await acc.sign_up("peggy@example.com", PASSWORD)
        await acc.create_api_key(other, "k", ["read"], [], None)

    run(pg_url, body)


def test_api_key_creation_needs_totp_when_enabled(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("quinn@example.com", PASSWORD)
        totp, _ = await enrol(acc, uid, clock)
        await rejects("TOTP_REQUIRED", 401, acc.create_api_key(uid, "k", ["read"], [], None))
        await rejects("TOTP_INVALID", 401, acc.create_api_key(uid, "k", ["read"], [], totp.at(clock.t + 120)))
        await rejects("TOTP_REUSED", 401, acc.create_api_key(uid, "k", ["read"], [], totp.at(clock.t)))
        assert await acc.list_api_keys(uid) == []
        clock.t += 30
        key, _ = await acc.create_api_key(uid, "k", ["read"], [], totp.at(clock.t))
        assert [k["key"] for k in await acc.list_api_keys(uid)] == [key]

    run(pg_url, body, clock=clock)


def test_key_of_another_user_cannot_be_revoked(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        alice = await acc.sign_up("alice@example.com", PASSWORD)
        bob = await acc.sign_up("bob@example.com", PASSWORD)
        key, secret = await acc.create_api_key(alice, "k", ["read"], [], None)
        await rejects("KEY_UNKNOWN", 404, acc.revoke_api_key(bob, key))
        assert await acc.list_api_keys(bob) == []
        assert [k["revoked"] for k in await acc.list_api_keys(alice)] == [False]
        payload = b"GET /account"
        assert await acc.verify_signature(key, sign(secret, payload), payload, clock.ms, 5000, "ip", "read") == alice

    run(pg_url, body, clock=clock)


# --- signed requests ------------------------------------------------------------------------


def _request(ts_ms: int, window: int = 5000, body: str = "") -> bytes:
    return f"{ts_ms}|{window}|POST|/api/v1/orders|{body}".encode()


def test_signature_good_bad_and_stale(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("rupert@example.com", PASSWORD)
        key, secret = await acc.create_api_key(uid, "bot", ["read", "trade"], [], None)
        now = clock.ms

        p = _request(now)
        assert await acc.verify_signature(key, sign(secret, p), p, now, 5000, "203.0.113.9", "trade") == uid
        [k] = await acc.list_api_keys(uid)
        assert k["last_used_at"].timestamp() == clock.t

        p = _request(now, body="qty=1")
        good = sign(secret, p)
        off_by_one_digit = good[:-1] + ("1" if good[-1] == "0" else "0")
        await rejects(
            "BAD_SIGNATURE", 401, acc.verify_signature(key, off_by_one_digit, p, now, 5000, "", "trade")
        )
        await rejects(
            "BAD_SIGNATURE", 401, acc.verify_signature(key, sign(secret, b"other"), p, now, 5000, "", "trade")
        )
        await rejects(
            "BAD_SIGNATURE", 401, acc.verify_signature(key, sign("not the secret", p), p, now, 5000, "", "trade")
        )
        await rejects("BAD_SIGNATURE", 401, acc.verify_signature(key, "", p, now, 5000, "", "trade"))
        await rejects("BAD_SIGNATURE", 401, acc.verify_signature(key, "zz\u00e9", p, now, 5000, "", "trade"))
        # Upper-case hex is the same signature.
        assert await acc.verify_signature(key, sign(secret, p).upper(), p, now, 5000, "", "trade") == uid

        # The window: [now - recv_window, now + 1000 ms].
        for ts, ok in ((now - 5000, True), (now - 5001, False), (now + 1000, True), (now + 1001, False)):
            p = _request(ts)
            check = acc.verify_signature(key, sign(secret, p), p, ts, 5000, "", "read")
            if ok:
                assert await check == uid
            else:
                await rejects("STALE_TIMESTAMP", 401, check)
        p = _request(now - 59_000, 60_000)
        assert await acc.verify_signature(key, sign(secret, p), p, now - 59_000, 60_000, "", "read") == uid

        p = _request(now)
        for window in (0, -1, 60_001):
            await rejects(
                "INVALID_RECV_WINDOW", 400, acc.verify_signature(key, sign(secret, p), p, now, window, "", "read")
            )
        for unknown in ("dpg_" + "A" * 32, "nope", ""):
            await rejects("KEY_UNKNOWN", 401, acc.verify_signature(unknown, sign(secret, p), p, now, 5000, "", "read"))
        with pytest.raises(ValueError):
            await acc.verify_signature(key, sign(secret, p), p, now, 5000, "", "admin")

    run(pg_url, body, clock=clock)


def test_signature_revoked_key(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("trent@example.com", PASSWORD)
        key, secret = await acc.create_api_key(uid, "bot", ["read"], [], None)
        p = _request(clock.ms)
        assert await acc.verify_signature(key, sign(secret, p), p, clock.ms, 5000, "", "read") == uid  # now cached
        await acc.revoke_api_key(uid, key)
        p = _request(clock.ms + 1)
        await rejects("KEY_REVOKED", 401, acc.verify_signature(key, sign(secret, p), p, clock.ms + 1, 5000, "", "read"))
        # Revoked comes before the timestamp and the signature.
        await rejects("KEY_REVOKED", 401, acc.verify_signature(key, "00", p, 0, 5000, "", "read"))

    run(pg_url, body, clock=clock)


def test_revocation_by_another_process_is_seen_after_the_cache_time(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        other = Accounts(acc.pool, acc.box, acc.replay, clock=clock, hasher=FAST)
        uid = await acc.sign_up("uma@example.com", PASSWORD)
        key, secret = await acc.create_api_key(uid, "bot", ["read"], [], None)
        p = _request(clock.ms)
        assert await other.verify_signature(key, sign(secret, p), p, clock.ms, 5000, "", "read") == uid
        await acc.revoke_api_key(uid, key)
        p = _request(clock.ms + 1)
        assert await other.verify_signature(key, sign(secret, p), p, clock.ms + 1, 5000, "", "read") == uid  # cached
        other.key_cache_s = 0.0
        p = _request(clock.ms + 2)
        await rejects(
            "KEY_REVOKED", 401, other.verify_signature(key, sign(secret, p), p, clock.ms + 2, 5000, "", "read")
        )

    run(pg_url, body, clock=clock)


def test_signature_permissions(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("victor@example.com", PASSWORD)
        reader, rs = await acc.create_api_key(uid, "reader", ["read"], [], None)
        trader, ts = await acc.create_api_key(uid, "trader", ["read", "trade"], [], None)
        for n, (key, secret, need, ok) in enumerate(
            [
                (reader, rs, "read", True),
                (reader, rs, "trade", False),
                (reader, rs, "withdraw", False),
                (trader, ts, "trade", True),
                (trader, ts, "withdraw", False),
            ]
        ):
            p = _request(clock.ms + n)
            check = acc.verify_signature(key, sign(secret, p), p, clock.ms + n, 5000, "", need)
            if ok:
                assert await check == uid
            else:
                await rejects("PERMISSION_DENIED", 403, check)

    run(pg_url, body, clock=clock)


def test_signature_ip_allow_list(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("wendy@example.com", PASSWORD)
        key, secret = await acc.create_api_key(
            uid, "bot", ["read"], ["203.0.113.0/24", "2001:db8::/32", "198.51.100.5"], None
        )
        cases = [
            ("203.0.113.77", True),
            ("::ffff:203.0.113.78", True),  # IPv4 seen through an IPv6 socket
            ("2001:db8::1234", True),
            ("198.51.100.5", True),
            ("198.51.100.6", False),
            ("203.0.114.1", False),
            ("2001:db9::1", False),
            ("", False),
            ("not an ip", False),
        ]
        for n, (ip, ok) in enumerate(cases):
            p = _request(clock.ms + n)
            check = acc.verify_signature(key, sign(secret, p), p, clock.ms + n, 5000, ip, "read")
            if ok:
                assert await check == uid, ip
            else:
                await rejects("IP_NOT_ALLOWED", 403, check)
        # The signature is checked before the address, the address before the permission.
        p = _request(clock.ms + 100)
        await rejects(
            "BAD_SIGNATURE", 401, acc.verify_signature(key, "00", p, clock.ms + 100, 5000, "10.0.0.1", "read")
        )
        await rejects(
            "IP_NOT_ALLOWED",
            403,
            acc.verify_signature(key, sign(secret, p), p, clock.ms + 100, 5000, "10.0.0.1", "trade"),
        )
        await rejects(
            "PERMISSION_DENIED",
            403,
            acc.verify_signature(key, sign(secret, p), p, clock.ms + 100, 5000, "203.0.113.1", "trade"),
        )

    run(pg_url, body, clock=clock)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A random key prefix on the real Redis; its keys are deleted afterwards."""
    prefix = f"dpg-test:{secrets.token_hex(8)}:"

    async def ping() -> bool:
        r = Redis.from_url(REDIS_URL)
        try:
            return bool(await r.ping())
        except (OSError, RedisError):
            return False
        finally:
            await r.aclose()

    if not asyncio.run(ping()):
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield prefix

    async def clean() -> None:
        r = Redis.from_url(REDIS_URL)
        async for k in r.scan_iter(match=prefix + "*"):
            await r.delete(k)
        await r.aclose()

    asyncio.run(clean())


def _replay_checks(clock: Clock) -> Body:
    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("xavier@example.com", PASSWORD)
        key, secret = await acc.create_api_key(uid, "bot", ["trade"], [], None)
        p = _request(clock.ms)
        sig = sign(secret, p)
        assert await acc.verify_signature(key, sig, p, clock.ms, 5000, "", "trade") == uid
        await rejects("REPLAYED", 401, acc.verify_signature(key, sig, p, clock.ms, 5000, "", "trade"))
        await rejects("REPLAYED", 401, acc.verify_signature(key, sig.upper(), p, clock.ms, 5000, "", "trade"))
        # Later, still inside the window: still a replay.
        clock.t += 4.9
        await rejects("REPLAYED", 401, acc.verify_signature(key, sig, p, clock.ms - 4900, 5000, "", "trade"))
        # Another request is not a replay.
        p2 = _request(clock.ms)
        assert await acc.verify_signature(key, sign(secret, p2), p2, clock.ms, 5000, "", "trade") == uid
        # A request refused by an earlier check does not use up its signature.
        p3 = _request(clock.ms + 1)
        await rejects(
            "PERMISSION_DENIED", 403, acc.verify_signature(key, sign(secret, p3), p3, clock.ms + 1, 5000, "", "read")
        )
        assert await acc.verify_signature(key, sign(secret, p3), p3, clock.ms + 1, 5000, "", "trade") == uid

    return body


def test_signature_replayed_memory_guard(pg_url: str) -> None:
    clock = Clock()
    run(pg_url, _replay_checks(clock), clock=clock)


def test_signature_replayed_redis_guard(pg_url: str, redis_prefix: str) -> None:
    clock = Clock()
    run(pg_url, _replay_checks(clock), clock=clock, redis_prefix=redis_prefix)

    async def stored() -> list[int]:
        r = Redis.from_url(REDIS_URL)
        try:
            return [await r.pttl(k) async for k in r.scan_iter(match=redis_prefix + "*")]
        finally:
            await r.aclose()

    ttls = asyncio.run(stored())
    assert len(ttls) == 3  # one per accepted request
    assert all(0 < t <= 62_000 for t in ttls)


# --- replay guards --------------------------------------------------------------------------


def test_memory_replay_guard() -> None:
    now = [100.0]
    guard = MemoryReplayGuard(clock=lambda: now[0])

    async def body() -> None:
        assert await guard.first_seen("a", 1000)
        assert not await guard.first_seen("a", 1000)
        assert await guard.first_seen("b", 5000)
        now[0] += 0.999
        assert not await guard.first_seen("a", 1000)
        now[0] += 0.001
        assert await guard.first_seen("a", 1000)  # expired, so new again
        assert len(guard) == 2
        now[0] += 10
        assert await guard.first_seen("c", 1000)
        assert len(guard) == 1  # "a" and "b" were pruned on the way
        with pytest.raises(ValueError):
            await guard.first_seen("d", 0)

    asyncio.run(body())


def test_redis_replay_guard(redis_prefix: str) -> None:
    async def body() -> None:
        r = Redis.from_url(REDIS_URL)
        try:
            guard = RedisReplayGuard(r, redis_prefix)
            assert await guard.first_seen("a", 60_000)
            assert not await guard.first_seen("a", 60_000)
            assert await guard.first_seen("b", 60_000)
            assert 0 < await r.pttl(redis_prefix + "a") <= 60_000
            assert await guard.first_seen("short", 50)
            assert not await guard.first_seen("short", 50)
            await asyncio.sleep(0.2)
            assert await guard.first_seen("short", 50)
            # Another process with the same prefix sees the same tokens.
            assert not await RedisReplayGuard(r, redis_prefix).first_seen("b", 60_000)
            assert await RedisReplayGuard(r, redis_prefix + "other:").first_seen("b", 60_000)
        finally:
            await r.aclose()

    asyncio.run(body())


# --- secret box -----------------------------------------------------------------------------


def test_secret_box_round_trip() -> None:
    box = SecretBox(os.urandom(32))
    sealed = box.seal(b"the secret")
    assert box.open(sealed) == b"the secret"
    assert b"the secret" not in sealed
    assert len(sealed) == 12 + len(b"the secret") + 16
    assert box.seal(b"the secret") != sealed  # a new nonce every time
    assert box.open(box.seal(b"")) == b""
    assert box.open(box.seal(b"x", b"place"), b"place") == b"x"
    with pytest.raises(ValueError):
        box.open(box.seal(b"x", b"place"), b"another place")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(ValueError):
        box.open(bytes(tampered))
    with pytest.raises(ValueError):
        SecretBox(os.urandom(32)).open(sealed)
    with pytest.raises(ValueError):
        box.open(sealed[:20])
    with pytest.raises(ValueError):
        SecretBox(os.urandom(16))


def test_secret_box_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPG_SECRET_KEY", raising=False)
    old = os.umask(0o022)
    try:
        data_dir = tmp_path / "data"
        box = SecretBox.from_env_or_file(data_dir)
    finally:
        os.umask(old)
    path = data_dir / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", path.read_text())
    assert [p.name for p in data_dir.iterdir()] == ["secret.key"]  # no temporary file left
    sealed = box.seal(b"kept")
    again = SecretBox.from_env_or_file(data_dir)  # the same key, read back
    assert again.open(sealed) == b"kept"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    key = os.urandom(32)
    monkeypatch.setenv("DPG_SECRET_KEY", key.hex())
    other_dir = tmp_path / "other"
    from_env = SecretBox.from_env_or_file(other_dir)
    assert SecretBox(key).open(from_env.seal(b"y")) == b"y"
    assert not (other_dir / "secret.key").exists()
    monkeypatch.setenv("DPG_SECRET_KEY", "abcd")
    with pytest.raises(ValueError, match="64 hexadecimal"):
        SecretBox.from_env_or_file(other_dir)

    monkeypatch.delenv("DPG_SECRET_KEY")
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / "secret.key").write_text("zz" * 32)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        SecretBox.from_env_or_file(bad_dir)


# --- logs -----------------------------------------------------------------------------------


def test_no_secret_is_logged(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    said: list[str] = []

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("yvonne@example.com", PASSWORD)
        await rejects("INVALID_CREDENTIALS", 401, acc.login("yvonne@example.com", "wrong password", None, "ip"))
        totp_secret, _ = await acc.totp_begin(uid)
        code = pyotp.TOTP(totp_secret).at(clock.t)
        recovery = await acc.totp_enable(uid, code)
        token, _ = await acc.login("yvonne@example.com", PASSWORD, recovery[0], "ip")
        await acc.logout(token)
        clock.t += 30
        key, secret = await acc.create_api_key(uid, "bot", ["read"], [], pyotp.TOTP(totp_secret).at(clock.t))
        p = _request(clock.ms)
        sig = sign(secret, p)
        await acc.verify_signature(key, sig, p, clock.ms, 5000, "", "read")
        await rejects("REPLAYED", 401, acc.verify_signature(key, sig, p, clock.ms, 5000, "", "read"))
        said.extend([PASSWORD, "wrong password", totp_secret, *recovery, token, secret, sig])

    with caplog.at_level(logging.DEBUG, logger="dpg"):
        run(pg_url, body, clock=clock)
    assert "event=api_key_created" in caplog.text
    for s in said:
        assert s not in caplog.text
