"""``Accounts``: the one object the API holds for identity, composing users, sessions, TOTP,
mailed links, API keys and signatures over one pool, one sealing key and one clock. Each method
is its part's; the docstrings are there."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from argon2 import PasswordHasher

from dpg.identity.attempts import Attempts
from dpg.identity.keys import ApiKeys
from dpg.identity.links import Links
from dpg.identity.passwords import Passwords
from dpg.identity.replay import ReplayGuard
from dpg.identity.sealing import SecretBox
from dpg.identity.sessions import RevocationHook, Sessions
from dpg.identity.signatures import Signatures
from dpg.identity.store import Pool
from dpg.identity.totp import Totp
from dpg.identity.users import Users
from dpg.mail import Mailer

log = logging.getLogger("dpg.identity")


class Accounts:
    """Users, sessions and API keys in PostgreSQL (migrations 0003 and 0012).

    Passwords and recovery codes are argon2 hashes; TOTP and API secrets are sealed with
    ``secret_box``; session tokens and mailed link tokens are stored as their SHA-256. ``clock``
    (epoch seconds) decides session expiry, TOTP codes, signature timestamps and link expiry.
    Attempts are counted in PostgreSQL, shared by every API process: ``max_failures`` within
    ``failure_window_s`` per e-mail and client address and per user for TOTP codes,
    ``max_account_failures`` per e-mail from addresses the account never logged in from; past a
    limit, TOO_MANY_ATTEMPTS (429) until the window ends. With a ``mailer``, sign-up mails a link
    to verify the address (valid 24 h) and a password reset mails a link (valid 1 h); links point
    to ``public_url``. Every logout, password reset and key revocation is told to ``on_revoke``.

    Nothing here logs a password, session token, secret, TOTP or recovery code, signature or mailed
    link; log lines name users by id and API keys by their public id.
    """

    def __init__(
        self,
        pool: Pool,
        secret_box: SecretBox,
        replay_guard: ReplayGuard,
        *,
        session_ttl_s: float = 86400,
        clock: Callable[[], float] = time.time,
        hasher: PasswordHasher | None = None,
        key_cache_s: float = 5.0,
        max_failures: int = 10,
        max_account_failures: int = 100,
        failure_window_s: float = 900.0,
        mailer: Mailer | None = None,
        public_url: str = "http://127.0.0.1:8000",
    ) -> None:
        self.pool = pool
        self.box = secret_box
        self.replay = replay_guard
        self.clock = clock
        self.mailer = mailer
        self.on_revoke: list[RevocationHook] = []  # awaited after each logout and key revocation
        passwords = Passwords(hasher)
        self.hasher = passwords.hasher
        attempts = Attempts(pool, clock, max_failures=max_failures, failure_window_s=failure_window_s)
        self.sessions = Sessions(pool, clock, self._revoked, ttl_s=session_ttl_s)
        self.links = Links(pool, clock, attempts, passwords, self.sessions, mailer, public_url)
        self.totp = Totp(pool, secret_box, clock, attempts, passwords, self.links.mail_user)
        self.users = Users(pool, clock, passwords, attempts, self.totp, self.sessions, self.links,
                           max_account_failures=max_account_failures)
        self.keys = ApiKeys(pool, secret_box, clock, self.totp, self._revoked, cache_s=key_cache_s)
        self.signatures = Signatures(self.keys, replay_guard, clock)

    @property
    def key_cache_s(self) -> float:
        """How long this process trusts an API key's record it has read."""
        return self.keys.cache_s

    @key_cache_s.setter
    def key_cache_s(self, seconds: float) -> None:
        self.keys.cache_s = seconds

    async def _revoked(self, user_id: int, credential: bytes | str) -> None:
        for hook in self.on_revoke:
            try:
                await hook(user_id, credential)
            except Exception:
                log.exception("event=revocation_hook_failed user=%d", user_id)

    def forget(self, credential: bytes | str) -> None:
        """Drop a session (by its token's SHA-256 digest) or an API key from this process's caches,
        so that a revocation made by another API process takes effect here at once."""
        if isinstance(credential, bytes):
            self.sessions.forget(credential)
        else:
            self.keys.forget(credential)

    # -- users and sessions --

    async def sign_up(self, email: str, password: str, *, verified: bool = False) -> int:
        return await self.users.sign_up(email, password, verified=verified)

    async def login(self, email: str, password: str, totp_code: str | None, ip: str) -> tuple[str, float]:
        return await self.users.login(email, password, totp_code, ip)

    async def session_user(self, token: str) -> int:
        return await self.sessions.user(token)

    async def logout(self, token: str) -> None:
        await self.sessions.logout(token)

    # -- TOTP --

    async def totp_begin(self, user_id: int) -> tuple[str, str]:
        return await self.totp.begin(user_id)

    async def totp_enable(self, user_id: int, code: str) -> list[str]:
        return await self.totp.enable(user_id, code)

    async def totp_enabled(self, user_id: int) -> bool:
        return await self.totp.enabled(user_id)

    async def totp_status(self, user_id: int) -> dict[str, Any]:
        return await self.totp.status(user_id)

    async def totp_disable(self, user_id: int, code: str | None) -> None:
        await self.totp.disable(user_id, code)

    async def new_recovery_codes(self, user_id: int, code: str | None) -> list[str]:
        return await self.totp.new_recovery_codes(user_id, code)

    async def check_totp(self, user_id: int, code: str | None) -> None:
        await self.totp.check(user_id, code)

    # -- e-mail: verification, password reset, notices --

    async def email_status(self, user_id: int) -> dict[str, Any]:
        return await self.links.email_status(user_id)

    async def require_verified_email(self, user_id: int) -> None:
        await self.links.require_verified_email(user_id)

    async def resend_verification(self, user_id: int) -> None:
        await self.links.resend_verification(user_id)

    async def verify_email(self, token: str) -> int:
        return await self.links.verify_email(token)

    async def request_password_reset(self, email: str, ip: str) -> None:
        await self.links.request_password_reset(email, ip)

    async def reset_password(self, token: str, password: str) -> int:
        return await self.links.reset_password(token, password)

    async def mail_user(self, user_id: int, subject: str, text: str) -> None:
        await self.links.mail_user(user_id, subject, text)

    async def drain(self) -> None:
        await self.links.drain()

    # -- API keys and signed requests --

    async def create_api_key(self, user_id: int, name: str, permissions: Iterable[str], ip_allow: Iterable[str],
                             totp_code: str | None) -> tuple[str, str]:
        return await self.keys.create(user_id, name, permissions, ip_allow, totp_code)

    async def list_api_keys(self, user_id: int) -> list[dict[str, Any]]:
        return await self.keys.of_user(user_id)

    async def revoke_api_key(self, user_id: int, key: str) -> None:
        await self.keys.revoke(user_id, key)

    async def key_user(self, key: str, client_ip: str, need: str) -> int:
        return await self.keys.user(key, client_ip, need)

    async def verify_signature(self, key: str, signature_hex: str, payload: bytes, timestamp_ms: int,
                               recv_window_ms: int, client_ip: str, need: str) -> int:
        return await self.signatures.verify(key, signature_hex, payload, timestamp_ms, recv_window_ms, client_ip,
                                            need)
