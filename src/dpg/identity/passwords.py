"""Passwords and recovery codes: argon2 hashes, computed off the event loop, and the length a
password must have."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dpg.identity.errors import AuthError

PASSWORD_MIN, PASSWORD_MAX = 10, 128


def check_length(password: str) -> None:
    """WEAK_PASSWORD (400) unless the password has PASSWORD_MIN to PASSWORD_MAX characters."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AuthError("WEAK_PASSWORD", f"the password must have {PASSWORD_MIN} to {PASSWORD_MAX} characters", 400)


class Passwords:
    """argon2 with ``hasher`` (its defaults when None)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher if hasher is not None else PasswordHasher()
        self._dummy_hash: str | None = None

    async def hash(self, secret: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, secret)

    async def verify(self, hashed: str, secret: str) -> bool:
        def verify() -> bool:
            try:
                return self.hasher.verify(hashed, secret)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)

    async def dummy_verify(self, password: str) -> None:
        """As long as a real verification, for the answers that need none."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, hashed: str) -> bool:
        return self.hasher.check_needs_rehash(hashed)
