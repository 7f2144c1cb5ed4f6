"""Mailed links: verifying a user's e-mail address and resetting a password, each by a single-use
token (stored as its SHA-256) mailed to the address; and notices mailed to a user."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from dpg.identity.attempts import MAIL_WINDOW_S, Attempts
from dpg.identity.emails import normalize_email
from dpg.identity.errors import AuthError, user_unknown
from dpg.identity.passwords import Passwords, check_length
from dpg.identity.sessions import Sessions
from dpg.identity.store import Pool, at, sha256
from dpg.mail import Mailer

log = logging.getLogger("dpg.identity")

VERIFY_TTL_S = 24 * 3600  # an e-mail verification link
RESET_TTL_S = 3600  # a password-reset link
MAILS_PER_ADDRESS = 5  # verification or reset mails to one account per MAIL_WINDOW_S
RESET_MAILS_PER_CLIENT = 20  # reset requests from one client address per MAIL_WINDOW_S

_LINK_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def _verify_mail(link: str) -> tuple[str, str]:
    return "Verify your email address for DPG", (
        "Hello,\n\n"
        "a DPG account was opened with this email address. To confirm that the address is yours, open\n"
        "this link within 24 hours (it works once):\n\n"
        f"{link}\n\n"
        "Until then the account can trade and deposit, but not withdraw or add withdrawal addresses.\n"
        "If you did not sign up, ignore this message.\n")


def _reset_mail(link: str) -> tuple[str, str]:
    return "Reset your DPG password", (
        "Hello,\n\n"
        "someone asked to reset the password of the DPG account of this email address. To choose a new\n"
        "password, open this link within 1 hour (it works once):\n\n"
        f"{link}\n\n"
        "A new password signs out every session of the account. If you did not ask for this, ignore\n"
        "this message: your password stays as it is.\n")


class Links:
    """Links point to ``public_url``; without a ``mailer`` none is sent (logged)."""

    def __init__(self, pool: Pool, clock: Callable[[], float], attempts: Attempts, passwords: Passwords,
                 sessions: Sessions, mailer: Mailer | None, public_url: str) -> None:
        self.pool = pool
        self.clock = clock
        self.attempts = attempts
        self.passwords = passwords
        self.sessions = sessions
        self.mailer = mailer
        self.public_url = public_url.rstrip("/")
        self._tasks: set[asyncio.Task[None]] = set()  # mail sent after the answer

    async def email_status(self, user_id: int) -> dict[str, Any]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT email, email_verified_at FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise user_unknown()
        return {"email": row[0], "verified": row[1] is not None}

    async def require_verified_email(self, user_id: int) -> None:
        """EMAIL_NOT_VERIFIED (403) until the user has followed a verification link: what an
        unverified account may not do (withdraw, add a withdrawal address) calls this first."""
        if not (await self.email_status(user_id))["verified"]:
            raise AuthError("EMAIL_NOT_VERIFIED", "verify your email address first: follow the link mailed to you"
                                                  " (POST /api/v1/auth/verify-email/resend mails a new one)", 403)

    async def resend_verification(self, user_id: int) -> None:
        """Mail a new verification link (the earlier ones stay valid until they expire); at most
        MAILS_PER_ADDRESS an hour (TOO_MANY_ATTEMPTS); EMAIL_ALREADY_VERIFIED (409) if verified."""
        status = await self.email_status(user_id)
        if status["verified"]:
            raise AuthError("EMAIL_ALREADY_VERIFIED", "this email address is verified already", 409)
        wait = await self.attempts.count(f"mail:verify:{user_id}", MAILS_PER_ADDRESS, MAIL_WINDOW_S)
        if wait is not None:
            raise AuthError("TOO_MANY_ATTEMPTS", f"a link was mailed several times already; try again in "
                                                 f"{int(wait + 0.999)} s", 429)
        await self.mail_link(user_id, str(status["email"]), "verify")

    async def verify_email(self, token: str) -> int:
        """Follow a verification link: its user's address is verified; returns the user id.
        TOKEN_INVALID, TOKEN_USED or TOKEN_EXPIRED (400) otherwise."""
        async with self.pool.connection() as conn, conn.transaction():
            user_id, email = await self._use_token(conn, token, "verify")
            cur = await conn.execute(
                "UPDATE users SET email_verified_at = coalesce(email_verified_at, %s) WHERE id = %s AND email = %s"
                " RETURNING id", (at(self.clock()), user_id, email))
            if await cur.fetchone() is None:
                raise AuthError("TOKEN_INVALID", "this link is for an address the account no longer has", 400)
        log.info("event=email_verified user=%d", user_id)
        return user_id

    async def request_password_reset(self, email: str, ip: str) -> None:
        """Mail a link to set a new password (valid 1 h, once) if an account has this address.
        Nothing is said either way, and the answer takes as long (the lookup and the mail run after
        it); mails are limited per account (MAILS_PER_ADDRESS an hour) and per client address
        (RESET_MAILS_PER_CLIENT), silently."""
        try:
            address = normalize_email(email)
        except AuthError:
            return
        task = asyncio.create_task(self._reset_mail(address, ip))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reset_mail(self, address: str, ip: str) -> None:
        try:
            if await self.attempts.count(f"mail:reset-from:{ip}", RESET_MAILS_PER_CLIENT, MAIL_WINDOW_S) is not None:
                log.info("event=password_reset_limited per=client")
                return
            if await self.attempts.count(f"mail:reset:{address}", MAILS_PER_ADDRESS, MAIL_WINDOW_S) is not None:
                log.info("event=password_reset_limited per=address")
                return
            async with self.pool.connection() as conn:
                cur = await conn.execute("SELECT id FROM users WHERE email = %s", (address,))
                row = await cur.fetchone()
            if row is None:
                log.info("event=password_reset_unknown")
                return
            log.info("event=password_reset_requested user=%d", int(row[0]))
            await self.mail_link(int(row[0]), address, "reset")
        except psycopg.Error as e:
            log.warning("event=password_reset_mail_failed error=%s", type(e).__name__)

    async def reset_password(self, token: str, password: str) -> int:
        """Follow a reset link: the user's password becomes ``password``, every session of the user
        is revoked (as a logout revokes it: sockets closed, every API process told), the reset links mailed before
        are used up, and the address counts as verified (the link reached it). Returns the user id.
        WEAK_PASSWORD before the link is used; TOKEN_INVALID, TOKEN_USED or TOKEN_EXPIRED (400)."""
        check_length(password)
        password_hash = await self.passwords.hash(password)
        now = at(self.clock())
        async with self.pool.connection() as conn, conn.transaction():
            user_id, email = await self._use_token(conn, token, "reset")
            cur = await conn.execute(
                "UPDATE users SET password_hash = %s, email_verified_at = coalesce(email_verified_at, %s)"
                " WHERE id = %s AND email = %s RETURNING id", (password_hash, now, user_id, email))
            if await cur.fetchone() is None:
                raise AuthError("TOKEN_INVALID", "this link is for an address the account no longer has", 400)
            revoked = await self.sessions.revoke_all(conn, user_id, now)
            await conn.execute("UPDATE email_tokens SET used_at = %s WHERE user_id = %s AND purpose = 'reset'"
                               " AND used_at IS NULL", (now, user_id))
        log.info("event=password_reset user=%d sessions_revoked=%d", user_id, len(revoked))
        await self.sessions.told(user_id, revoked)
        return user_id

    async def _use_token(self, conn: psycopg.AsyncConnection[TupleRow], token: str, purpose: str) -> tuple[int, str]:
        """Use up a mailed link's token: (user id, the address it was sent to)."""
        if not isinstance(token, str) or not _LINK_TOKEN_RE.fullmatch(token):
            raise AuthError("TOKEN_INVALID", "this link is not valid", 400)
        digest, now = sha256(token), at(self.clock())
        cur = await conn.execute(
            "UPDATE email_tokens SET used_at = %s WHERE token_hash = %s AND purpose = %s AND used_at IS NULL"
            " AND expires_at > %s RETURNING user_id, email", (now, digest, purpose, now))
        row = await cur.fetchone()
        if row is not None:
            return int(row[0]), str(row[1])
        cur = await conn.execute("SELECT used_at FROM email_tokens WHERE token_hash = %s AND purpose = %s",
                                 (digest, purpose))
        seen = await cur.fetchone()
        if seen is None:
            raise AuthError("TOKEN_INVALID", "this link is not valid", 400)
        if seen[0] is not None:
            raise AuthError("TOKEN_USED", "this link was used already", 400)
        raise AuthError("TOKEN_EXPIRED", "this link has expired; ask for a new one", 400)

    async def mail_link(self, user_id: int, address: str, purpose: str) -> None:
        """A new single-use link for ``purpose`` ('verify' or 'reset'), mailed to ``address``. A
        failure is logged, not raised: the user can ask again."""
        if self.mailer is None:
            log.warning("event=mail_skipped reason=no_mailer user=%d purpose=%s", user_id, purpose)
            return
        token = secrets.token_urlsafe(32)
        now = self.clock()
        ttl = VERIFY_TTL_S if purpose == "verify" else RESET_TTL_S
        compose = _verify_mail if purpose == "verify" else _reset_mail
        page = "verify-email" if purpose == "verify" else "reset-password"
        subject, text = compose(f"{self.public_url}/{page}?token={token}")
        try:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s)", (sha256(token), user_id, purpose, address, at(now),
                                                         at(now + ttl)))
            await self.mailer.send(address, subject, text, withhold=(token,))
        except psycopg.Error as e:
            log.warning("event=mail_link_failed user=%d purpose=%s error=%s", user_id, purpose, type(e).__name__)
            return
        log.info("event=mail_link user=%d purpose=%s", user_id, purpose)

    async def mail_user(self, user_id: int, subject: str, text: str) -> None:
        """A notice to the user's address (a new withdrawal address, say), through the mailer."""
        if self.mailer is None:
            log.warning("event=mail_skipped reason=no_mailer user=%d", user_id)
            return
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT email FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise user_unknown()
        await self.mailer.send(str(row[0]), subject, text)

    async def drain(self) -> None:
        """Wait for the mail sent after an answer (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.mailer is not None:
            await self.mailer.drain()
