"""Accounts on the real PostgreSQL, what issue 11 asked of them: a TOTP code passes once, also
when sent concurrently and to several API processes; the password lockout is counted before the
hash and per client address, so an attacker cannot lock the owner out; look-alike addresses are
refused; e-mail verification and password reset through mailed single-use links, read from the
outbox the mailer writes."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from psycopg_pool import AsyncConnectionPool

from dpg.identity import Accounts, AuthError, email_skeleton, normalize_email
from dpg.mail import Mailer
from tests.api.test_auth import PASSWORD, Clock, enrol, fetch, rejects, run

CYRILLIC_A = "\u0430"  # looks like 'a'
FULLWIDTH_A = "\uff41"


def other_process(acc: Accounts, pool: AsyncConnectionPool, **kw: Any) -> Accounts:
    """Accounts as another API process has them: its own pool and memory, the same database."""
    return Accounts(pool, acc.box, acc.replay, clock=acc.clock, hasher=acc.hasher, mailer=Mailer(pool), **kw)


def outcomes(results: list[Any]) -> list[str]:
    """'ok' for a result, the code for an AuthError; anything else fails the test."""
    out = []
    for r in results:
        if isinstance(r, AuthError):
            out.append(r.code)
        elif isinstance(r, BaseException):
            raise r
        else:
            out.append("ok")
    return sorted(out)


# --- a TOTP code passes once ------------------------------------------------------------------


def test_a_totp_code_passes_once_under_concurrency_and_across_processes(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        async with AsyncConnectionPool(pg_url, min_size=1, max_size=4, open=False) as pool:
            other = other_process(acc, pool, max_failures=100)
            uid = await acc.sign_up("tess@example.com", PASSWORD)
            totp, _ = await enrol(acc, uid, clock)

            # a withdrawal's or allow-list change's check: 12 at once, in two processes
            clock.t += 30
            code = totp.at(clock.t)
            got = await asyncio.gather(*(a.check_totp(uid, code) for a in (acc, other) for _ in range(6)),
                                       return_exceptions=True)
            assert outcomes(got) == ["TOTP_REUSED"] * 11 + ["ok"]

            # login: 8 at once, one session
            clock.t += 30
            code = totp.at(clock.t)
            got = await asyncio.gather(*(a.login("tess@example.com", PASSWORD, code, "ip") for a in (acc, other)
                                         for _ in range(4)), return_exceptions=True)
            assert outcomes(got) == ["TOTP_REUSED"] * 7 + ["ok"]
            [(sessions,)] = fetch(pg_url, "SELECT count(*) FROM sessions WHERE user_id = %s", uid)
            assert sessions == 1

            # API keys: 5 at once, one key
            clock.t += 30
            code = totp.at(clock.t)
            got = await asyncio.gather(*(other.create_api_key(uid, f"k{i}", ["read"], [], code) for i in range(5)),
                                       return_exceptions=True)
            assert outcomes(got) == ["TOTP_REUSED"] * 4 + ["ok"]
            assert len(await acc.list_api_keys(uid)) == 1

            # a code of an earlier step than the last accepted one is refused too
            await rejects("TOTP_REUSED", 401, acc.check_totp(uid, totp.at(clock.t - 30)))
            # the next step's code passes
            await acc.check_totp(uid, totp.at(clock.t + 30))

    run(pg_url, body, clock=clock, max_failures=100)


def test_enabling_2fa_uses_its_code_up(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        async with AsyncConnectionPool(pg_url, min_size=1, max_size=4, open=False) as pool:
            other = other_process(acc, pool)
            uid = await acc.sign_up("uri@example.com", PASSWORD)
            secret, _ = await acc.totp_begin(uid)
            code = pyotp.TOTP(secret).at(clock.t)
            got = await asyncio.gather(acc.totp_enable(uid, code), other.totp_enable(uid, code),
                                       acc.totp_enable(uid, code), return_exceptions=True)
            assert outcomes(got).count("ok") == 1
            assert set(outcomes(got)) <= {"ok", "TOTP_ALREADY_ENABLED", "TOTP_REUSED"}
            await rejects("TOTP_REUSED", 401, acc.login("uri@example.com", PASSWORD, code, "ip"))

    run(pg_url, body, clock=clock)


# --- password lockout -------------------------------------------------------------------------


class CountingHasher(PasswordHasher):
    """The cheap test parameters, counting the password checks (argon2 verifications)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.lock = threading.Lock()
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self.lock:
            self.verified += 1
        return super().verify(hash, password)


def test_forty_concurrent_wrong_passwords_reach_the_hash_at_most_ten_times(pg_url: str) -> None:
    hasher = CountingHasher()

    async def body(acc: Accounts) -> None:
        async with AsyncConnectionPool(pg_url, min_size=1, max_size=4, open=False) as pool:
            other = other_process(acc, pool)  # half of them to another API process
            await acc.sign_up("vera@example.com", PASSWORD)
            got = await asyncio.gather(*(a.login("vera@example.com", f"guess number {i}", None, "203.0.113.9")
                                         for i in range(20) for a in (acc, other)), return_exceptions=True)
            assert outcomes(got) == ["INVALID_CREDENTIALS"] * 10 + ["TOO_MANY_ATTEMPTS"] * 30
            assert hasher.verified == 10
            locked = next(r for r in got if isinstance(r, AuthError) and r.code == "TOO_MANY_ATTEMPTS")
            assert locked.status == 429 and re.search(r"try again in \d+ s", locked.reason)
            # the right password from that address waits too, without a check
            await rejects("TOO_MANY_ATTEMPTS", 429, acc.login("vera@example.com", PASSWORD, None, "203.0.113.9"))
            assert hasher.verified == 10

    run(pg_url, body, hasher=hasher)


def test_an_attackers_lockout_leaves_the_owner_other_addresses(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("wanda@example.com", PASSWORD)
        await acc.login("wanda@example.com", PASSWORD, None, "192.0.2.10")  # the owner, at home
        for i in range(10):
            await rejects("INVALID_CREDENTIALS", 401, acc.login("wanda@example.com", f"guess {i}", None, "198.51.0.66"))
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.login("wanda@example.com", PASSWORD, None, "198.51.0.66"))
        # the owner logs in from home, and from an address the account never used
        token, _ = await acc.login("wanda@example.com", PASSWORD, None, "192.0.2.10")
        assert await acc.session_user(token) == uid
        token, _ = await acc.login("wanda@example.com", PASSWORD, None, "2001:db8::7")
        assert await acc.session_user(token) == uid
        # the attacker's address stays locked until its window ends
        clock.t += 899
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.login("wanda@example.com", PASSWORD, None, "198.51.0.66"))
        clock.t += 1
        await acc.login("wanda@example.com", PASSWORD, None, "198.51.0.66")

    run(pg_url, body, clock=clock)


def test_guesses_spread_over_many_addresses_are_capped_but_not_from_the_owners_addresses(pg_url: str) -> None:
    hasher = CountingHasher()

    async def body(acc: Accounts) -> None:
        await acc.sign_up("xena@example.com", PASSWORD)
        await acc.login("xena@example.com", PASSWORD, None, "192.0.2.20")
        # the owner's first login (from an address new then) and four addresses guessing once each:
        # the account's cap of five for addresses it never logged in from
        for n in range(4):
            await rejects("INVALID_CREDENTIALS", 401, acc.login("xena@example.com", "guess!!!", None, f"10.0.0.{n}"))
        before = hasher.verified
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.login("xena@example.com", "guess!!!!!", None, "10.0.0.99"))
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.login("xena@example.com", PASSWORD, None, "10.9.9.9"))
        assert hasher.verified == before
        # an address the owner logged in from is not under that cap
        await acc.login("xena@example.com", PASSWORD, None, "192.0.2.20")
        # unknown accounts are counted alike (nothing tells them apart)
        for n in range(5):
            await rejects("INVALID_CREDENTIALS", 401, acc.login("nobody@example.com", "guess!!!", None, f"10.1.0.{n}"))
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.login("nobody@example.com", "guess!!!!!", None, "10.1.0.99"))

    run(pg_url, body, hasher=hasher, max_failures=3, max_account_failures=5)


# --- look-alike addresses ---------------------------------------------------------------------


def test_normal_form_and_skeleton_of_an_address() -> None:
    assert normalize_email(f" {FULLWIDTH_A}lice@Example.COM ") == "alice@example.com"
    assert normalize_email("\U0001d41a\U0001d425ice@example.com") == "alice@example.com"  # mathematical bold
    assert normalize_email("Stra\u00dfe@example.de") == "stra\u00dfe@example.de"  # delivered as written
    assert email_skeleton("stra\u00dfe@example.de") == "strasse@example.de"  # but looks like strasse
    for mixed in (f"{CYRILLIC_A}lice@example.com", "b\u03bfb@example.com", f"alice@ex{CYRILLIC_A}mple.com",
                  "zero\u200bwidth@example.com"):
        with pytest.raises(AuthError) as info:
            normalize_email(mixed)
        assert info.value.code == "INVALID_EMAIL"
    ape = "\u0430\u0440\u0435"  # all Cyrillic, looks like "ape"
    assert email_skeleton(f"{ape}@example.com") == "ape@example.com"
    assert email_skeleton(f"bob@{ape}.com") == "bob@ape.com"
    assert email_skeleton("\u03b1\u03bd\u03bf@example.com") == "avo@example.com"  # Greek alpha, nu, omicron
    assert email_skeleton("zo\u00eb@example.com") != email_skeleton("zoe@example.com")  # a diacritic shows


def test_look_alike_addresses_do_not_sign_up(pg_url: str) -> None:
    async def body(acc: Accounts) -> None:
        alice = await acc.sign_up("alice@example.com", PASSWORD)
        await rejects("EMAIL_TAKEN", 409, acc.sign_up(f"{FULLWIDTH_A}lice@example.com", PASSWORD))
        await rejects("EMAIL_TAKEN", 409, acc.sign_up("ALICE@EXAMPLE.COM", PASSWORD))
        await rejects("INVALID_EMAIL", 400, acc.sign_up(f"{CYRILLIC_A}lice@example.com", PASSWORD))
        await acc.sign_up("ape@example.com", PASSWORD)
        await rejects("EMAIL_LOOKALIKE", 409, acc.sign_up("\u0430\u0440\u0435@example.com", PASSWORD))
        await rejects("EMAIL_LOOKALIKE", 409, acc.sign_up("\u0410\u0420\u0415@example.com", PASSWORD))
        await acc.sign_up("bob@ape.com", PASSWORD)
        await rejects("EMAIL_LOOKALIKE", 409, acc.sign_up("bob@\u0430\u0440\u0435.com", PASSWORD))
        # real addresses in other scripts, or with visible marks, are welcome
        await acc.sign_up("\u0438\u0432\u0430\u043d@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", PASSWORD)
        await acc.sign_up("zo\u00eb@example.com", PASSWORD)
        await acc.sign_up("zoe@example.com", PASSWORD)
        # the full-width form logs in to the one account
        token, _ = await acc.login(f"{FULLWIDTH_A}lice@example.com", PASSWORD, None, "ip")
        assert await acc.session_user(token) == alice

    run(pg_url, body)
    rows = fetch(pg_url, "SELECT email, email_skeleton FROM users ORDER BY id")
    assert rows[0] == ("alice@example.com", "alice@example.com")
    assert len(rows) == 6


# --- e-mail verification ----------------------------------------------------------------------


def mailed(pg_url: str, to: str, page: str) -> list[str]:
    """The tokens of the links to ``page`` in the outbox's messages to ``to``, oldest first."""
    rows = fetch(pg_url, "SELECT body FROM outbox WHERE to_address = %s ORDER BY id", to)
    return [m for (b,) in rows for m in re.findall(rf"http://127\.0\.0\.1:8000/{page}\?token=([A-Za-z0-9_-]+)", b)]


def test_email_verification_through_the_outbox(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("yara@example.com", PASSWORD)
        [token] = mailed(pg_url, "yara@example.com", "verify-email")
        assert await acc.email_status(uid) == {"email": "yara@example.com", "verified": False}
        await rejects("EMAIL_NOT_VERIFIED", 403, acc.require_verified_email(uid))
        await rejects("TOKEN_INVALID", 400, acc.verify_email("x" * 43))
        await rejects("TOKEN_INVALID", 400, acc.verify_email("not a token"))
        clock.t += 24 * 3600 - 1
        assert await acc.verify_email(token) == uid
        assert await acc.email_status(uid) == {"email": "yara@example.com", "verified": True}
        await acc.require_verified_email(uid)
        await rejects("TOKEN_USED", 400, acc.verify_email(token))
        await rejects("EMAIL_ALREADY_VERIFIED", 409, acc.resend_verification(uid))

        # expired after 24 h; a new link can be asked for, a few times an hour
        zed = await acc.sign_up("zed@example.com", PASSWORD)
        [old] = mailed(pg_url, "zed@example.com", "verify-email")
        clock.t += 24 * 3600
        await rejects("TOKEN_EXPIRED", 400, acc.verify_email(old))
        for _ in range(5):
            await acc.resend_verification(zed)
        await rejects("TOO_MANY_ATTEMPTS", 429, acc.resend_verification(zed))
        links = mailed(pg_url, "zed@example.com", "verify-email")
        assert len(set(links)) == 6
        assert await acc.verify_email(links[3]) == zed  # any unexpired one
        await rejects("TOKEN_USED", 400, acc.verify_email(links[3]))
        assert await acc.verify_email(links[5]) == zed  # verified already: a later link still says yes

        # users an operator creates are verified and get no mail
        op = await acc.sign_up("ops-made@example.com", PASSWORD, verified=True)
        await acc.require_verified_email(op)
        assert mailed(pg_url, "ops-made@example.com", "verify-email") == []

    run(pg_url, body, clock=clock)
    rows = fetch(pg_url, "SELECT token_hash FROM email_tokens")
    assert rows and all(len(h) == 32 for (h,) in rows)  # SHA-256, not the token
    tokens = mailed(pg_url, "yara@example.com", "verify-email")
    assert (hashlib.sha256(tokens[0].encode()).digest(),) in rows


# --- password reset ---------------------------------------------------------------------------


def test_password_reset_through_the_outbox(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("abel@example.com", PASSWORD)
        first, _ = await acc.login("abel@example.com", PASSWORD, None, "192.0.2.1")
        second, _ = await acc.login("abel@example.com", PASSWORD, None, "192.0.2.2")
        assert await acc.session_user(first) == uid  # cached in this process now

        # the same answer whether or not the address has an account; mail only for an account
        assert await acc.request_password_reset("nobody@example.com", "192.0.2.1") is None
        assert await acc.request_password_reset("not an address", "192.0.2.1") is None
        assert await acc.request_password_reset("ABEL@example.com", "192.0.2.1") is None
        await acc.drain()
        assert fetch(pg_url, "SELECT count(*) FROM outbox WHERE to_address <> 'abel@example.com'") == [(0,)]
        [token] = mailed(pg_url, "abel@example.com", "reset-password")

        # a weak new password is refused before the link is used
        await rejects("WEAK_PASSWORD", 400, acc.reset_password(token, "short"))
        clock.t += 3599
        assert await acc.reset_password(token, "a brand new password") == uid
        await rejects("SESSION_INVALID", 401, acc.session_user(first))
        await rejects("SESSION_INVALID", 401, acc.session_user(second))
        await rejects("INVALID_CREDENTIALS", 401, acc.login("abel@example.com", PASSWORD, None, "192.0.2.1"))
        token2, _ = await acc.login("abel@example.com", "a brand new password", None, "192.0.2.1")
        assert await acc.session_user(token2) == uid
        await rejects("TOKEN_USED", 400, acc.reset_password(token, "yet another password"))
        assert (await acc.email_status(uid))["verified"]  # the link reached the address

        # links asked for before a reset are used up by it
        await acc.request_password_reset("abel@example.com", "192.0.2.1")
        await acc.request_password_reset("abel@example.com", "192.0.2.1")
        await acc.drain()
        _, used, spare = mailed(pg_url, "abel@example.com", "reset-password")
        await acc.reset_password(used, "the third password")
        await rejects("TOKEN_USED", 400, acc.reset_password(spare, "yet another password"))
        # a link expires after an hour
        await acc.request_password_reset("abel@example.com", "192.0.2.1")
        await acc.drain()
        late = mailed(pg_url, "abel@example.com", "reset-password")[-1]
        clock.t += 3600
        await rejects("TOKEN_EXPIRED", 400, acc.reset_password(late, "yet another password"))
        await acc.login("abel@example.com", "the third password", None, "192.0.2.1")
        # at most five reset mails an hour to an address, silently
        clock.t += 3600
        for _ in range(7):
            await acc.request_password_reset("abel@example.com", "192.0.2.1")
        await acc.drain()
        assert len(mailed(pg_url, "abel@example.com", "reset-password")) == 4 + 5

    run(pg_url, body, clock=clock)


def test_a_reset_still_asks_for_the_second_factor(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("bea@example.com", PASSWORD)
        totp, _ = await enrol(acc, uid, clock)
        await acc.request_password_reset("bea@example.com", "ip")
        await acc.drain()
        [token] = mailed(pg_url, "bea@example.com", "reset-password")
        await acc.reset_password(token, "a brand new password")
        await rejects("TOTP_REQUIRED", 401, acc.login("bea@example.com", "a brand new password", None, "ip"))
        clock.t += 30
        await acc.login("bea@example.com", "a brand new password", totp.at(clock.t), "ip")

    run(pg_url, body, clock=clock)


def test_no_link_is_logged(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("cleo@example.com", PASSWORD)
        await acc.request_password_reset("cleo@example.com", "ip")
        await acc.drain()
        [verify] = mailed(pg_url, "cleo@example.com", "verify-email")
        [reset] = mailed(pg_url, "cleo@example.com", "reset-password")
        await acc.verify_email(verify)
        await acc.reset_password(reset, "a brand new password")
        await rejects("TOKEN_USED", 400, acc.reset_password(reset, "a brand new password"))
        said.extend([verify, reset, "a brand new password"])
        assert uid

    said: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="dpg"):
        run(pg_url, body)
    assert "event=password_reset user=" in caplog.text and "event=email_verified" in caplog.text
    for s in said:
        assert s not in caplog.text

