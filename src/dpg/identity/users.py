"""Users: sign-up (the address normalised and unlike any other's, the password hashed, a
verification link mailed) and login (password, then the second factor, then a session)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg

from dpg.identity.attempts import Attempts
from dpg.identity.emails import EMAIL_MAX, email_skeleton, normalize_email
from dpg.identity.errors import AuthError, invalid_credentials
from dpg.identity.links import Links
from dpg.identity.passwords import PASSWORD_MAX, Passwords, check_length
from dpg.identity.sessions import Sessions
from dpg.identity.store import Pool, at
from dpg.identity.totp import Totp

log = logging.getLogger("dpg.identity")


class Users:
    """Login attempts are reserved before they are checked (before the slow password hash):
    ``attempts.max_failures`` per e-mail and client address (an attacker's lockout from one address
    leaves the owner's other addresses alone); ``max_account_failures`` per e-mail from client
    addresses the account never logged in from (a cap on guesses spread over many addresses,
    which never locks out an address the owner has used). A success clears its address's count."""

    def __init__(self, pool: Pool, clock: Callable[[], float], passwords: Passwords, attempts: Attempts,
                 totp: Totp, sessions: Sessions, links: Links, *, max_account_failures: int) -> None:
        self.pool = pool
        self.clock = clock
        self.passwords = passwords
        self.attempts = attempts
        self.totp = totp
        self.sessions = sessions
        self.links = links
        self.max_account_failures = max_account_failures

    async def sign_up(self, email: str, password: str, *, verified: bool = False) -> int:
        """A new user; returns its id (its ledger account number). EMAIL_TAKEN (409) if the address
        has an account, EMAIL_LOOKALIKE (409) if an address that looks the same has one. Unless
        ``verified`` (users an operator creates), the address is unverified until the user follows
        the link mailed to it."""
        address = normalize_email(email)
        check_length(password)
        password_hash = await self.passwords.hash(password)
        now = at(self.clock())
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "INSERT INTO users (email, email_skeleton, password_hash, created_at, email_verified_at)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                    (address, email_skeleton(address), password_hash, now, now if verified else None),
                )
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            async with self.pool.connection() as conn:
                cur = await conn.execute("SELECT 1 FROM users WHERE email = %s", (address,))
                same = await cur.fetchone()
            if same is None:
                raise AuthError("EMAIL_LOOKALIKE", "an account with an address that looks like this one exists",
                                409) from None
            raise AuthError("EMAIL_TAKEN", "an account with this email exists", 409) from None
        except psycopg.errors.CheckViolation:  # a letter whose lower case the database sees otherwise
            raise AuthError("INVALID_EMAIL", "not a valid email address", 400) from None
        assert row is not None
        user_id = int(row[0])
        log.info("event=user_created user=%d verified=%s", user_id, str(verified).lower())
        if not verified:
            await self.links.mail_link(user_id, address, "verify")
        return user_id

    async def login(self, email: str, password: str, totp_code: str | None, ip: str) -> tuple[str, float]:
        """A new session: (token, expiry in epoch seconds). With TOTP enabled, ``totp_code`` is
        the current code or one unused recovery code (which is then used up). ``ip``: the client
        address, which the attempts are counted by (see the class)."""
        try:
            address: str | None = normalize_email(email)
        except AuthError:
            address = None
        who = address or email.strip().lower()[:EMAIL_MAX]
        row = None
        if address is not None:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT id, password_hash, totp_enabled, totp_secret,"
                    " EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.ip = %s)"
                    " FROM users u WHERE email = %s",
                    (ip, address),
                )
                row = await cur.fetchone()
        here = f"password:{who}|{ip}"
        await self.attempts.attempt(here, self.attempts.max_failures)
        if row is None or not row[4]:  # an address this account never logged in from
            await self.attempts.attempt(f"password:{who}", self.max_account_failures)
        if row is None or len(password) > PASSWORD_MAX:
            await self.passwords.dummy_verify(password[:PASSWORD_MAX])
            log.info("event=login_failed reason=credentials")
            raise invalid_credentials()
        user_id, password_hash, totp_enabled, totp_secret = int(row[0]), str(row[1]), bool(row[2]), row[3]
        if not await self.passwords.verify(password_hash, password):
            log.info("event=login_failed reason=credentials user=%d", user_id)
            raise invalid_credentials()
        if totp_enabled:
            await self.totp.second_factor(user_id, str(totp_secret), totp_code, allow_recovery=True)
        await self.attempts.clear(here)
        if self.passwords.needs_rehash(password_hash):
            await self._rehash(user_id, password)
        token, expires = await self.sessions.create(user_id, ip)
        log.info("event=login user=%d", user_id)
        return token, expires

    async def _rehash(self, user_id: int, password: str) -> None:
        new_hash = await self.passwords.hash(password)
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (new_hash, user_id))
        log.info("event=password_rehashed user=%d", user_id)
