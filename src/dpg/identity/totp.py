"""Two-factor authentication by TOTP (RFC 6238) and recovery codes: enrolment, the second factor
of a login or a sensitive request, turning it off, new recovery codes.

A TOTP time step once accepted for a user is never accepted again (``users.totp_last_step``,
advanced by one conditional UPDATE: one code, used concurrently in any API process, passes once).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pyotp

from dpg.identity.attempts import Attempts
from dpg.identity.errors import AuthError, totp_reused, user_unknown
from dpg.identity.passwords import Passwords
from dpg.identity.sealing import SecretBox
from dpg.identity.store import Pool

log = logging.getLogger("dpg.identity")

RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "DPG"
TOTP_STEP_S = 30  # one TOTP code per 30 s step (RFC 6238); the steps either side are accepted too

_TOTP_RE = re.compile(r"[0-9]{6}")
_RECOVERY_RE = re.compile(r"[0-9a-f]{12}")

# a notice to a user's address: (user id, subject, text)
MailUser = Callable[[int, str, str], Awaitable[None]]


def _totp_aad(user_id: int) -> bytes:
    return b"dpg.totp:%d" % user_id


def _new_recovery_code() -> str:
    """48 random bits shown as three groups of four hex digits."""
    h = secrets.token_hex(6)
    return f"{h[0:4]}-{h[4:8]}-{h[8:12]}"


class Totp:
    """TOTP secrets sealed with ``box``; codes by ``clock``; guesses counted per user by ``attempts``
    (``max_failures`` in its window); recovery codes hashed by ``passwords``."""

    def __init__(self, pool: Pool, box: SecretBox, clock: Callable[[], float], attempts: Attempts,
                 passwords: Passwords, mail_user: MailUser) -> None:
        self.pool = pool
        self.box = box
        self.clock = clock
        self.attempts = attempts
        self.passwords = passwords
        self.mail_user = mail_user

    async def begin(self, user_id: int) -> tuple[str, str]:
        """A new TOTP secret for the user, stored but not yet enabled: (base32 secret, otpauth://
        URI). TOTP_ALREADY_ENABLED (409) if TOTP is on."""
        secret = pyotp.random_base32()
        sealed = base64.b64encode(self.box.seal(secret.encode(), _totp_aad(user_id))).decode()
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT email, totp_enabled FROM users WHERE id = %s FOR UPDATE", (user_id,))
            row = await cur.fetchone()
            if row is None:
                raise user_unknown()
            if row[1]:
                raise AuthError("TOTP_ALREADY_ENABLED", "two-factor authentication is already on", 409)
            await conn.execute("UPDATE users SET totp_secret = %s WHERE id = %s", (sealed, user_id))
        log.info("event=totp_begin user=%d", user_id)
        return secret, pyotp.TOTP(secret).provisioning_uri(name=str(row[0]), issuer_name=TOTP_ISSUER)

    async def enable(self, user_id: int, code: str) -> list[str]:
        """Turn TOTP on with a current code from the secret of ``begin``; returns the recovery
        codes, shown once. The code's time step is used up like any other."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_secret, totp_enabled FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise user_unknown()
        if row[1]:
            raise AuthError("TOTP_ALREADY_ENABLED", "two-factor authentication is already on", 409)
        if row[0] is None:
            raise AuthError("TOTP_NOT_STARTED", "begin the enrolment first", 409)
        sealed = str(row[0])
        who = f"totp:{user_id}"
        await self.attempts.attempt(who, self.attempts.max_failures)
        steps = self._steps(user_id, sealed, "".join((code or "").split()))
        if not steps:
            log.info("event=totp_failed user=%d step=enable", user_id)
            raise AuthError("TOTP_INVALID", "wrong authentication code", 401)
        codes, hashes = await self._new_recovery_codes()
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE users SET totp_enabled = true, recovery_codes = %s, totp_last_step = %s"
                " WHERE id = %s AND totp_secret = %s AND NOT totp_enabled"
                " AND (totp_last_step IS NULL OR totp_last_step < %s) RETURNING id",
                (hashes, steps[-1], user_id, sealed, steps[-1]),
            )
            done = await cur.fetchone()
            if done is None:
                cur = await conn.execute("SELECT totp_enabled, totp_last_step FROM users WHERE id = %s", (user_id,))
                now = await cur.fetchone()
        if done is None:
            if now is not None and now[0]:
                raise AuthError("TOTP_ALREADY_ENABLED", "two-factor authentication is already on", 409)
            if now is not None and now[1] is not None and now[1] >= steps[-1]:
                raise totp_reused()
            raise AuthError("TOTP_NOT_STARTED", "the enrolment changed meanwhile; begin again", 409)
        await self.attempts.clear(who)
        log.info("event=totp_enabled user=%d", user_id)
        return codes

    async def enabled(self, user_id: int) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_enabled FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise user_unknown()
        return bool(row[0])

    async def status(self, user_id: int) -> dict[str, Any]:
        """Whether TOTP is on, and how many unused recovery codes are left (0 while off)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_enabled, cardinality(recovery_codes) FROM users WHERE id = %s",
                                     (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise user_unknown()
        return {"enabled": bool(row[0]), "recovery_codes_left": int(row[1] or 0) if row[0] else 0}

    async def _new_recovery_codes(self) -> tuple[list[str], list[str]]:
        """RECOVERY_CODE_COUNT new recovery codes: (the codes, shown once; their argon2 hashes, stored)."""
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        hashes = await asyncio.gather(*(self.passwords.hash(c.replace("-", "")) for c in codes))
        return codes, list(hashes)

    async def _enabled_secret(self, user_id: int) -> str:
        """The sealed TOTP secret of a user with TOTP on; TOTP_NOT_ENABLED (409) while it is off."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_enabled, totp_secret FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise user_unknown()
        if not row[0]:
            raise AuthError("TOTP_NOT_ENABLED", "two-factor authentication is off", 409)
        return str(row[1])

    async def disable(self, user_id: int, code: str | None) -> None:
        """Turn TOTP off with a current code (its time step is used up like any other; a recovery
        code is not accepted): the secret and the recovery codes are erased, and the user is
        mailed a notice. TOTP_NOT_ENABLED (409) while it is off."""
        sealed = await self._enabled_secret(user_id)
        await self.second_factor(user_id, sealed, code, allow_recovery=False)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE users SET totp_enabled = false, totp_secret = NULL, recovery_codes = '{}'"
                " WHERE id = %s AND totp_enabled AND totp_secret = %s RETURNING id", (user_id, sealed))
            done = await cur.fetchone()
        if done is None:  # turned off (or enrolled anew) meanwhile
            raise AuthError("TOTP_NOT_ENABLED", "two-factor authentication is off", 409)
        log.info("event=totp_disabled user=%d", user_id)
        try:
            await self.mail_user(user_id, "Two-factor authentication is off on your DPG account", (
                "Hello,\n\n"
                "two-factor authentication was turned off on your DPG account: logging in, new API keys,\n"
                "withdrawals and withdrawal addresses no longer need a code from your authenticator app.\n\n"
                "If you did not turn it off, log in, change your password and turn it on again.\n"))
        except Exception as e:  # the mail is a notice: 2FA is off either way
            log.warning("event=totp_mail_failed user=%d error=%s", user_id, type(e).__name__)

    async def new_recovery_codes(self, user_id: int, code: str | None) -> list[str]:
        """Replace the recovery codes, with a current TOTP code (used up like any other; a recovery
        code is not accepted): the new codes are returned, shown once, and the old ones no longer
        log in. TOTP_NOT_ENABLED (409) while TOTP is off."""
        sealed = await self._enabled_secret(user_id)
        await self.second_factor(user_id, sealed, code, allow_recovery=False)
        codes, hashes = await self._new_recovery_codes()
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE users SET recovery_codes = %s WHERE id = %s AND totp_enabled AND totp_secret = %s"
                " RETURNING id", (hashes, user_id, sealed))
            done = await cur.fetchone()
        if done is None:
            raise AuthError("TOTP_NOT_ENABLED", "two-factor authentication is off", 409)
        log.info("event=recovery_codes_renewed user=%d", user_id)
        return codes

    async def check(self, user_id: int, code: str | None) -> None:
        """Pass when TOTP is off or ``code`` is a current code not used before (its time step is
        then used up); else TOTP_REQUIRED / TOTP_INVALID / TOTP_REUSED. Recovery codes are
        accepted only by a login."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_enabled, totp_secret FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise user_unknown()
        if row[0]:
            await self.second_factor(user_id, str(row[1]), code, allow_recovery=False)

    def _steps(self, user_id: int, sealed: str, code: str) -> list[int]:
        """The time steps, of now and one either side, whose code ``code`` is (ascending)."""
        if not _TOTP_RE.fullmatch(code):
            return []
        totp = pyotp.TOTP(self.box.open(base64.b64decode(sealed), _totp_aad(user_id)).decode())
        now = int(self.clock() // TOTP_STEP_S)
        return [s for s in (now - 1, now, now + 1) if hmac.compare_digest(totp.generate_otp(s), code)]

    async def _use_step(self, user_id: int, steps: list[int]) -> bool:
        """Use up the first of ``steps`` later than the last step accepted for the user: one
        conditional UPDATE, so of concurrent uses of one step exactly one succeeds."""
        async with self.pool.connection() as conn:
            for step in steps:
                cur = await conn.execute(
                    "UPDATE users SET totp_last_step = %s WHERE id = %s"
                    " AND (totp_last_step IS NULL OR totp_last_step < %s) RETURNING id",
                    (step, user_id, step),
                )
                if await cur.fetchone() is not None:
                    return True
        return False

    async def second_factor(self, user_id: int, sealed: str, code: str | None, *, allow_recovery: bool) -> None:
        """Pass with a current code (or, ``allow_recovery``, an unused recovery code) for the user
        whose sealed secret is ``sealed``; else TOTP_REQUIRED / TOTP_INVALID / TOTP_REUSED."""
        if code is None or not code.strip():
            raise AuthError("TOTP_REQUIRED", "two-factor authentication is on for this account: send the current"
                            " 6-digit code of your authenticator app in the request's \"totp\" field"
                            + (" (or one of your recovery codes)" if allow_recovery else ""), 401)
        who = f"totp:{user_id}"
        await self.attempts.attempt(who, self.attempts.max_failures)
        compact = "".join(code.split())
        reused = False
        if _TOTP_RE.fullmatch(compact):
            steps = self._steps(user_id, sealed, compact)
            ok = bool(steps) and await self._use_step(user_id, steps)
            reused = bool(steps) and not ok
        elif allow_recovery:
            ok = await self._use_recovery_code(user_id, compact.replace("-", "").lower())
        else:
            ok = False
        if not ok:
            log.info("event=totp_failed user=%d reason=%s", user_id, "reused" if reused else "wrong")
            raise totp_reused() if reused else AuthError("TOTP_INVALID", "wrong authentication code", 401)
        await self.attempts.clear(who)

    async def _use_recovery_code(self, user_id: int, code: str) -> bool:
        """Use up the matching recovery code, if any (the row is locked meanwhile)."""
        if not _RECOVERY_RE.fullmatch(code):
            return False
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT recovery_codes FROM users WHERE id = %s FOR UPDATE", (user_id,))
            row = await cur.fetchone()
            hashes: list[str] = list(row[0]) if row is not None else []
            matches = await asyncio.gather(*(self.passwords.verify(h, code) for h in hashes))
            for hashed, ok in zip(hashes, matches, strict=True):
                if ok:
                    await conn.execute(
                        "UPDATE users SET recovery_codes = array_remove(recovery_codes, %s) WHERE id = %s",
                        (hashed, user_id),
                    )
                    log.info("event=recovery_code_used user=%d left=%d", user_id, len(hashes) - 1)
                    return True
        return False
