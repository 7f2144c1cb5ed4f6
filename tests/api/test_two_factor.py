"""Turning 2FA off and renewing the recovery codes, each with a current code from the app (used up
like any other; a recovery code does not do): in the accounts library on the real PostgreSQL
with a clock that moves only when told, then over HTTP against ``dpg up``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dpg.identity import Accounts
from tests.api.client import PASSWORD, Codes, User, served
from tests.api.test_auth import Clock, enrol, fetch, rejects, run

pytestmark = pytest.mark.timeout(300)


def test_turning_two_factor_off_needs_a_current_code_once(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("olga@example.com", PASSWORD)
        assert await acc.totp_status(uid) == {"enabled": False, "recovery_codes_left": 0}
        await rejects("TOTP_NOT_ENABLED", 409, acc.totp_disable(uid, "123456"))
        totp, recovery = await enrol(acc, uid, clock)
        assert await acc.totp_status(uid) == {"enabled": True, "recovery_codes_left": 10}

        await rejects("TOTP_REQUIRED", 401, acc.totp_disable(uid, None))
        wrong = f"{(int(totp.at(clock.t)) + 1) % 1_000_000:06d}"
        await rejects("TOTP_INVALID", 401, acc.totp_disable(uid, wrong))
        await rejects("TOTP_INVALID", 401, acc.totp_disable(uid, recovery[0]))  # not a recovery code
        await rejects("TOTP_REUSED", 401, acc.totp_disable(uid, totp.at(clock.t)))  # the code that turned it on
        assert await acc.totp_enabled(uid)

        clock.t += 30
        await acc.totp_disable(uid, totp.at(clock.t))
        assert await acc.totp_status(uid) == {"enabled": False, "recovery_codes_left": 0}
        await rejects("TOTP_NOT_ENABLED", 409, acc.totp_disable(uid, totp.at(clock.t + 30)))
        await acc.login("olga@example.com", PASSWORD, None, "ip")  # no code needed any more
        await acc.check_totp(uid, None)
        # the old secret and codes are gone: a new enrolment starts afresh
        secret, _ = await acc.totp_begin(uid)
        assert secret != totp.secret

    run(pg_url, body, clock=clock)
    [(enabled, stored, n)] = fetch(pg_url, "SELECT totp_enabled, totp_secret IS NOT NULL, cardinality(recovery_codes)"
                                           " FROM users")
    assert (enabled, stored, n) == (False, True, 0)  # a new secret was begun, not enabled
    mails = fetch(pg_url, "SELECT subject, body FROM outbox WHERE to_address = 'olga@example.com'"
                          " AND subject LIKE 'Two-factor%%'")
    assert len(mails) == 1 and "turned off" in mails[0][1]


def test_new_recovery_codes_replace_the_old_ones(pg_url: str) -> None:
    clock = Clock()

    async def body(acc: Accounts) -> None:
        uid = await acc.sign_up("pavel@example.com", PASSWORD)
        await rejects("TOTP_NOT_ENABLED", 409, acc.new_recovery_codes(uid, "123456"))
        totp, old = await enrol(acc, uid, clock)
        await acc.login("pavel@example.com", PASSWORD, old[0], "ip")  # one used up
        assert (await acc.totp_status(uid))["recovery_codes_left"] == 9

        await rejects("TOTP_REUSED", 401, acc.new_recovery_codes(uid, totp.at(clock.t)))
        await rejects("TOTP_INVALID", 401, acc.new_recovery_codes(uid, old[1]))  # not with a recovery code
        await rejects("TOTP_REQUIRED", 401, acc.new_recovery_codes(uid, ""))
        clock.t += 30
        new = await acc.new_recovery_codes(uid, totp.at(clock.t))
        assert len(new) == 10 and len(set(new)) == 10 and not set(new) & set(old)
        assert (await acc.totp_status(uid))["recovery_codes_left"] == 10
        await rejects("TOTP_REUSED", 401, acc.new_recovery_codes(uid, totp.at(clock.t)))  # that code is used up

        for code in old[1:3]:
            await rejects("TOTP_INVALID", 401, acc.login("pavel@example.com", PASSWORD, code, "ip"))
        token, _ = await acc.login("pavel@example.com", PASSWORD, new[0], "ip")
        assert await acc.session_user(token) == uid
        await rejects("TOTP_INVALID", 401, acc.login("pavel@example.com", PASSWORD, new[0], "ip"))  # once
        assert (await acc.totp_status(uid))["recovery_codes_left"] == 9

    run(pg_url, body, clock=clock)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(pg_server, tmp_path_factory.mktemp("two-factor"), "dpg_test_two_factor") as b:
        yield b


def test_the_routes_turn_off_and_renew_over_http(base: str) -> None:
    u = User(base, "routes@test.dpg")
    anon = httpx.Client(base_url=base, timeout=30)

    def code(r: httpx.Response) -> tuple[int, str]:
        return r.status_code, r.json()["code"]

    for path in ("/api/v1/auth/2fa/disable", "/api/v1/auth/2fa/recovery-codes"):
        assert code(anon.post(path, json={"code": "123456"})) == (401, "SESSION_REQUIRED")
        assert code(u.http.post(path, json={"code": "123456"})) == (409, "TOTP_NOT_ENABLED")
        for bad in ({"code": "1" * 17}, {}):  # too long, missing: refused at the edge with the error shape
            r = u.http.post(path, json=bad)
            assert r.status_code == 422 and r.json()["code"] and r.json()["reason"], r.text

    secret = u.http.post("/api/v1/auth/2fa/setup").json()["secret"]
    codes = Codes(secret)
    old = u.http.post("/api/v1/auth/2fa/enable", json={"code": codes.next()}).json()["recovery_codes"]
    assert u.http.get("/api/v1/auth/2fa").json() == {"enabled": True, "recovery_codes_left": 10}

    r = u.http.post("/api/v1/auth/2fa/recovery-codes", json={"code": old[0]})
    assert code(r) == (401, "TOTP_INVALID")
    r = u.http.post("/api/v1/auth/2fa/recovery-codes", json={"code": codes.next()})
    assert r.status_code == 200, r.text
    new = r.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert code(u.login(totp=old[0])) == (401, "TOTP_INVALID")  # the old codes no longer log in
    assert u.login(totp=new[0]).status_code == 200

    r = u.http.post("/api/v1/auth/2fa/disable", json={"code": codes.next()})
    assert r.status_code == 200 and r.json() == {"enabled": False}, r.text
    assert u.http.get("/api/v1/auth/2fa").json() == {"enabled": False, "recovery_codes_left": 0}
    assert u.login().status_code == 200  # the password alone logs in again
