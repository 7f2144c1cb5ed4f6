"""Accounts of the trading API: sign-up, password + TOTP login, sessions, API keys whose requests
are signed with HMAC-SHA256, e-mail verification and password reset by mailed links, and the
sealing of stored secrets. A library: the HTTP routes that call it live elsewhere. Every
rejection is an ``AuthError`` with a stable code and an HTTP status.

Nothing here logs a password, session token, secret, TOTP or recovery code, signature or mailed
link; log lines name users by id and API keys by their public id.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import hmac
import ipaddress
import logging
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from dpg.api.confusables import PROTOTYPES
from dpg.mail import Mailer

log = logging.getLogger("dpg.api.auth")

Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PERMISSIONS = ("read", "trade", "withdraw")
PASSWORD_MIN, PASSWORD_MAX = 10, 128
EMAIL_MAX = 254
KEY_NAME_MAX = 64
MAX_KEYS_PER_USER = 20
MAX_IP_ALLOW = 100
RECOVERY_CODE_COUNT = 10
MAX_RECV_WINDOW_MS = 60_000
SESSION_CACHE_S = 5.0  # how long an API process trusts a session it has looked up
FUTURE_SKEW_MS = 1_000
TOTP_ISSUER = "DPG"
TOTP_STEP_S = 30  # one TOTP code per 30 s step (RFC 6238); the steps either side are accepted too
LAST_USED_EVERY_S = 60.0
VERIFY_TTL_S = 24 * 3600  # an e-mail verification link
RESET_TTL_S = 3600  # a password-reset link
MAIL_WINDOW_S = 3600.0
MAILS_PER_ADDRESS = 5  # verification or reset mails to one account per MAIL_WINDOW_S
RESET_MAILS_PER_CLIENT = 20  # reset requests from one client address per MAIL_WINDOW_S
PRUNE_EVERY_S = 600.0

_KEY_RE = re.compile(r"dpg_[A-Za-z0-9_-]{32}")
_TOTP_RE = re.compile(r"[0-9]{6}")
_RECOVERY_RE = re.compile(r"[0-9a-f]{12}")
_LINK_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC")  # the scripts whose letters look alike


class AuthError(Exception):
    """A rejected request: ``code`` for programs, ``reason`` for people, ``status`` for HTTP."""

    def __init__(self, code: str, reason: str, status: int) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.status = status


def _invalid_credentials() -> AuthError:
    return AuthError("INVALID_CREDENTIALS", "wrong email or password", 401)


def _user_unknown() -> AuthError:
    return AuthError("USER_UNKNOWN", "no such user", 404)


def _totp_reused() -> AuthError:
    return AuthError("TOTP_REUSED", "this code was used already; wait for the next one", 401)


# --- sealed secrets -------------------------------------------------------------------------


class SecretBox:
    """AES-256-GCM with one 32-byte key. ``seal`` gives nonce (12 bytes) ‖ ciphertext ‖ tag;
    ``aad`` binds a sealed value to its place (a different ``aad`` fails to open)."""

    ENV = "DPG_SECRET_KEY"
    FILE = "secret.key"
    NONCE_BYTES = 12

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a SecretBox key is 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_env_or_file(cls, data_dir: Path) -> SecretBox:
        """The key from ``DPG_SECRET_KEY`` (64 hex characters), else from ``data_dir/secret.key``
        (the same form), which is created with a new random key and mode 0600 when missing."""
        text = os.environ.get(cls.ENV, "").strip()
        if text:
            return cls(_parse_key(text, cls.ENV))
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / cls.FILE
        if not path.exists():
            _create_key_file(path)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("event=secret_key_readable_by_others path=%s mode=%o", path, mode)
        return cls(_parse_key(path.read_text().strip(), str(path)))

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(self.NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad or None)

    def open(self, sealed: bytes, aad: bytes = b"") -> bytes:
        """The plaintext; ``ValueError`` if ``sealed`` was altered, sealed under another key or
        with another ``aad``."""
        if len(sealed) < self.NONCE_BYTES + 16:
            raise ValueError("sealed value too short")
        try:
            return self._aead.decrypt(sealed[: self.NONCE_BYTES], sealed[self.NONCE_BYTES :], aad or None)
        except InvalidTag:
            raise ValueError("sealed value does not open with this key") from None


def _parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError(f"{where}: the secret key must be 64 hexadecimal characters")
    return key


def _create_key_file(path: Path) -> None:
    """Write a new key to a private temporary file, then link it into place: a concurrent
    creator never sees a partial file, and the first link wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(os.urandom(32).hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
            log.info("event=secret_key_created path=%s", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


# --- replay guards --------------------------------------------------------------------------


class ReplayGuard(Protocol):
    async def first_seen(self, token: str, ttl_ms: int) -> bool:
        """True the first time ``token`` is offered within ``ttl_ms``, False on a repeat."""
        ...


class MemoryReplayGuard:
    """Tokens in this process's memory, forgotten as they expire: for one API process and tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    async def first_seen(self, token: str, ttl_ms: int) -> bool:
        if ttl_ms < 1:
            raise ValueError("ttl_ms must be positive")
        now = self.clock()
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] <= now:
            at, old = heapq.heappop(heap)
            if expiry.get(old) == at:
                del expiry[old]
        if token in expiry:
            return False
        at = now + ttl_ms / 1000
        expiry[token] = at
        heapq.heappush(heap, (at, token))
        return True


class RedisReplayGuard:
    """Tokens in Redis (``SET prefix+token 1 NX PX ttl``), shared by every API process."""

    def __init__(self, redis: Redis, prefix: str = "dpg:replay:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def first_seen(self, token: str, ttl_ms: int) -> bool:
        if ttl_ms < 1:
            raise ValueError("ttl_ms must be positive")
        return bool(await self.redis.set(self.prefix + token, b"1", nx=True, px=ttl_ms))


# --- validation helpers ---------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """The stored form of an email address: NFKC (full-width and other compatibility forms become
    plain letters), trimmed, lower-case. INVALID_EMAIL if it is not shaped like one (at most 254
    characters, one '@', a dot inside the domain, nothing blank or invisible), or if its local
    part or a domain label mixes Latin, Greek and Cyrillic letters ('alice' with a Cyrillic
    U+0430 for its 'a' is a look-alike, never a real name)."""
    e = unicodedata.normalize("NFKC", email).strip().lower()
    local, _, domain = e.partition("@")
    labels = domain.split(".")
    if (
        len(e) > EMAIL_MAX
        or e.count("@") != 1
        or not local
        or len(labels) < 2
        or not all(labels)
        or any(c.isspace() or not c.isprintable() for c in e)
    ):
        raise AuthError("INVALID_EMAIL", "not a valid email address", 400)
    if any(len(_scripts(part)) > 1 for part in (local, *labels)):
        raise AuthError("INVALID_EMAIL", "an address may not mix Latin, Greek and Cyrillic letters in one part", 400)
    return e


def _scripts(text: str) -> set[str]:
    """Which of Latin, Greek and Cyrillic the letters of ``text`` are written in."""
    found = set()
    for c in text:
        if c.isalpha():
            script = "LATIN" if c < "\x80" else unicodedata.name(c, "").partition(" ")[0]
            if script in _SCRIPTS:
                found.add(script)
    return found


def email_skeleton(address: str) -> str:
    """What an address looks like (Unicode TR39's skeleton, for Latin, Greek and Cyrillic): case
    folded and decomposed (NFD), each non-ASCII letter replaced by its confusable prototype
    (Cyrillic U+0430 and Greek U+03B1 by 'a'), decomposed again. Addresses with one skeleton
    look alike; an all-ASCII address is its own skeleton (after case folding)."""
    text = unicodedata.normalize("NFD", address.casefold())
    return unicodedata.normalize("NFD", "".join(c if c < "\x80" else PROTOTYPES.get(c, c) for c in text))


def _parse_ip_allow(ip_allow: Iterable[str]) -> list[str]:
    if isinstance(ip_allow, str | bytes):
        raise AuthError("INVALID_IP", "ip_allow is a list of addresses or networks", 400)
    out: list[str] = []
    for entry in ip_allow:
        if not isinstance(entry, str):
            raise AuthError("INVALID_IP", "ip_allow is a list of addresses or networks", 400)
        try:
            net = str(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise AuthError("INVALID_IP", f"not an IP address or network: {entry[:64]!r}", 400) from None
        if net not in out:
            out.append(net)
    if len(out) > MAX_IP_ALLOW:
        raise AuthError("INVALID_IP", f"at most {MAX_IP_ALLOW} entries in ip_allow", 400)
    return out


def _ip_allowed(client_ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _totp_aad(user_id: int) -> bytes:
    return b"dpg.totp:%d" % user_id


def _key_aad(key: str) -> bytes:
    return b"dpg.api_key:" + key.encode()


def _new_recovery_code() -> str:
    """48 random bits shown as three groups of four hex digits."""
    h = secrets.token_hex(6)
    return f"{h[0:4]}-{h[4:8]}-{h[8:12]}"


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


# Told of every logout and key revocation: (user id, the session token's SHA-256 digest | the API key).
RevocationHook = Callable[[int, bytes | str], Awaitable[None]]


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


@dataclass(frozen=True, slots=True)
class _Key:
    user_id: int
    secret: bytes
    permissions: frozenset[str]
    networks: tuple[Network, ...]
    revoked: bool


def _key_allows(record: _Key, client_ip: str, need: str) -> None:
    """Raise unless the key is live and lets ``client_ip`` use the permission ``need``."""
    if record.revoked:
        raise AuthError("KEY_REVOKED", "this API key was revoked", 401)
    if record.networks and not _ip_allowed(client_ip, record.networks):
        raise AuthError("IP_NOT_ALLOWED", "this address may not use this API key", 403)
    if need not in record.permissions:
        raise AuthError("PERMISSION_DENIED", f"this API key lacks the {need} permission", 403)


# --- accounts -------------------------------------------------------------------------------


class Accounts:
    """Users, sessions and API keys in PostgreSQL (migrations 0003 and 0012).

    Passwords and recovery codes are argon2 hashes; TOTP and API secrets are sealed with
    ``secret_box``; session tokens and mailed link tokens are stored as their SHA-256. ``clock``
    (epoch seconds) decides session expiry, TOTP codes, signature timestamps and link expiry.

    A TOTP time step once accepted for a user is never accepted again (``users.totp_last_step``,
    advanced by one conditional UPDATE: one code, used concurrently in any API process, passes
    once).

    Attempts are counted in PostgreSQL (``auth_attempts``), shared by every API process, and
    reserved before they are checked (before the slow password hash), so concurrent attempts
    cannot all pass: ``max_failures`` attempts within ``failure_window_s`` per e-mail and client
    address (an attacker's lockout from one address leaves the owner's other addresses alone);
    ``max_account_failures`` per e-mail from client addresses the account never logged in from
    (a cap on guesses spread over many addresses, which never locks out an address the owner has
    used); ``max_failures`` per user for TOTP codes. A success clears its address's count. Past a
    limit, TOO_MANY_ATTEMPTS (429) until the window ends.

    With a ``mailer``, sign-up mails a link to verify the address (valid 24 h) and a password
    reset mails a link (valid 1 h); links point to ``public_url``.
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
        self.session_ttl_s = session_ttl_s
        self.clock = clock
        self.hasher = hasher if hasher is not None else PasswordHasher()
        self.key_cache_s = key_cache_s
        self.max_failures = max_failures
        self.max_account_failures = max_account_failures
        self.failure_window_s = failure_window_s
        self.mailer = mailer
        self.public_url = public_url.rstrip("/")
        self._pruned_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()  # mail sent after the answer
        self._dummy_hash: str | None = None
        self._keys: dict[str, tuple[float, _Key]] = {}  # key -> (monotonic time fetched, record)
        self._sessions: dict[bytes, tuple[int, float, float]] = {}  # token hash -> (user, expires, cached until)
        self._touched: dict[str, float] = {}  # key -> monotonic time last_used_at was written
        self._keys_pruned_at = time.monotonic()
        self.on_revoke: list[RevocationHook] = []  # awaited after each logout and key revocation

    # -- argon2, off the event loop --

    async def _hash(self, secret: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, secret)

    async def _verify(self, hashed: str, secret: str) -> bool:
        def verify() -> bool:
            try:
                return self.hasher.verify(hashed, secret)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)

    async def _dummy_verify(self, password: str) -> None:
        """As long as a real verification, for the answers that need none."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(16))
        await self._verify(self._dummy_hash, password)

    # -- attempts (auth_attempts) --

    async def _count(self, subject: str, limit: int, window_s: float) -> float | None:
        """Count one attempt of ``subject`` in its window, in one statement (the row is locked
        while it changes). None when counted; else the seconds until the window ends: ``limit``
        attempts were counted already and this one is refused."""
        now = self.clock()
        cut = _at(now - window_s)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO auth_attempts AS a (subject, window_start, attempts) VALUES (%s, %s, 1)"
                " ON CONFLICT (subject) DO UPDATE SET"
                " window_start = CASE WHEN a.window_start <= %s THEN excluded.window_start ELSE a.window_start END,"
                " attempts = CASE WHEN a.window_start <= %s THEN 1 ELSE a.attempts + 1 END"
                " WHERE a.window_start <= %s OR a.attempts < %s RETURNING attempts",
                (subject, _at(now), cut, cut, cut, limit),
            )
            counted = await cur.fetchone()
            if counted is None:
                cur = await conn.execute("SELECT window_start FROM auth_attempts WHERE subject = %s", (subject,))
                row = await cur.fetchone()
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            oldest = _at(now - max(self.failure_window_s, MAIL_WINDOW_S))
            async with self.pool.connection() as conn:
                await conn.execute("DELETE FROM auth_attempts WHERE window_start < %s", (oldest,))
        if counted is not None:
            return None
        return max(1.0, row[0].timestamp() + window_s - now) if row is not None else window_s

    async def _attempt(self, subject: str, limit: int) -> None:
        """Count an attempt (password or TOTP); TOO_MANY_ATTEMPTS (429) past ``limit`` in the window."""
        wait = await self._count(subject, limit, self.failure_window_s)
        if wait is not None:
            raise AuthError("TOO_MANY_ATTEMPTS", f"too many failed attempts; try again in {int(wait + 0.999)} s", 429)

    async def _clear(self, subject: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM auth_attempts WHERE subject = %s", (subject,))

    # -- users --

    async def sign_up(self, email: str, password: str, *, verified: bool = False) -> int:
        """A new user; returns its id (its ledger account number). EMAIL_TAKEN (409) if the address
        has an account, EMAIL_LOOKALIKE (409) if an address that looks the same has one. Unless
        ``verified`` (users an operator creates), the address is unverified until the user follows
        the link mailed to it."""
        address = normalize_email(email)
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise AuthError("WEAK_PASSWORD", f"the password must have {PASSWORD_MIN} to {PASSWORD_MAX} characters", 400)
        password_hash = await self._hash(password)
        now = _at(self.clock())
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
            await self._mail_link(user_id, address, "verify")
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
        await self._attempt(here, self.max_failures)
        if row is None or not row[4]:  # an address this account never logged in from
            await self._attempt(f"password:{who}", self.max_account_failures)
        if row is None or len(password) > PASSWORD_MAX:
            await self._dummy_verify(password[:PASSWORD_MAX])
            log.info("event=login_failed reason=credentials")
            raise _invalid_credentials()
        user_id, password_hash, totp_enabled, totp_secret = int(row[0]), str(row[1]), bool(row[2]), row[3]
        if not await self._verify(password_hash, password):
            log.info("event=login_failed reason=credentials user=%d", user_id)
            raise _invalid_credentials()
        if totp_enabled:
            await self._second_factor(user_id, str(totp_secret), totp_code, allow_recovery=True)
        await self._clear(here)
        if self.hasher.check_needs_rehash(password_hash):
            await self._rehash(user_id, password)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + self.session_ttl_s
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, ip) VALUES (%s, %s, %s, %s, %s)",
                (_sha256(token), user_id, _at(now), _at(expires), ip),
            )
        log.info("event=login user=%d", user_id)
        return token, expires

    async def _rehash(self, user_id: int, password: str) -> None:
        new_hash = await self._hash(password)
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (new_hash, user_id))
        log.info("event=password_rehashed user=%d", user_id)

    # -- sessions --

    async def session_user(self, token: str) -> int:
        """The user of a live session. Live sessions are cached for a few seconds per process (a
        logout here takes effect at once; in another API process within SESSION_CACHE_S)."""
        digest = _sha256(token)
        now = self.clock()
        hit = self._sessions.get(digest)
        if hit is not None and hit[2] > now:
            if hit[1] <= now:
                raise AuthError("SESSION_EXPIRED", "the session has expired; sign in again", 401)
            return hit[0]
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT user_id, expires_at, revoked_at FROM sessions WHERE token_hash = %s", (digest,)
            )
            row = await cur.fetchone()
        if row is None or row[2] is not None:
            raise AuthError("SESSION_INVALID", "not signed in", 401)
        if row[1].timestamp() <= now:
            raise AuthError("SESSION_EXPIRED", "the session has expired; sign in again", 401)
        if len(self._sessions) > 100_000:
            self._sessions.clear()
        self._sessions[digest] = (int(row[0]), row[1].timestamp(), now + SESSION_CACHE_S)
        return int(row[0])

    async def logout(self, token: str) -> None:
        """Revoke the session; nothing happens for an unknown or already revoked token."""
        self._sessions.pop(_sha256(token), None)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE sessions SET revoked_at = %s WHERE token_hash = %s AND revoked_at IS NULL RETURNING user_id",
                (_at(self.clock()), _sha256(token)),
            )
            row = await cur.fetchone()
        if row is not None:
            log.info("event=logout user=%d", int(row[0]))
            await self._revoked(int(row[0]), _sha256(token))

    # -- TOTP --

    async def totp_begin(self, user_id: int) -> tuple[str, str]:
        """A new TOTP secret for the user, stored but not yet enabled: (base32 secret, otpauth://
        URI). TOTP_ALREADY_ENABLED (409) if TOTP is on."""
        secret = pyotp.random_base32()
        sealed = base64.b64encode(self.box.seal(secret.encode(), _totp_aad(user_id))).decode()
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT email, totp_enabled FROM users WHERE id = %s FOR UPDATE", (user_id,))
            row = await cur.fetchone()
            if row is None:
                raise _user_unknown()
            if row[1]:
                raise AuthError("TOTP_ALREADY_ENABLED", "two-factor authentication is already on", 409)
            await conn.execute("UPDATE users SET totp_secret = %s WHERE id = %s", (sealed, user_id))
        log.info("event=totp_begin user=%d", user_id)
        return secret, pyotp.TOTP(secret).provisioning_uri(name=str(row[0]), issuer_name=TOTP_ISSUER)

    async def totp_enable(self, user_id: int, code: str) -> list[str]:
        """Turn TOTP on with a current code from the secret of ``totp_begin``; returns the
        recovery codes, shown once. The code's time step is used up like any other."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_secret, totp_enabled FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise _user_unknown()
        if row[1]:
            raise AuthError("TOTP_ALREADY_ENABLED", "two-factor authentication is already on", 409)
        if row[0] is None:
            raise AuthError("TOTP_NOT_STARTED", "begin the enrolment first", 409)
        sealed = str(row[0])
        who = f"totp:{user_id}"
        await self._attempt(who, self.max_failures)
        steps = self._totp_steps(user_id, sealed, "".join((code or "").split()))
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
                raise _totp_reused()
            raise AuthError("TOTP_NOT_STARTED", "the enrolment changed meanwhile; begin again", 409)
        await self._clear(who)
        log.info("event=totp_enabled user=%d", user_id)
        return codes

    async def totp_enabled(self, user_id: int) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_enabled FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise _user_unknown()
        return bool(row[0])

    async def totp_status(self, user_id: int) -> dict[str, Any]:
        """Whether TOTP is on, and how many unused recovery codes are left (0 while off)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_enabled, cardinality(recovery_codes) FROM users WHERE id = %s",
                                     (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise _user_unknown()
        return {"enabled": bool(row[0]), "recovery_codes_left": int(row[1] or 0) if row[0] else 0}

    async def _new_recovery_codes(self) -> tuple[list[str], list[str]]:
        """RECOVERY_CODE_COUNT new recovery codes: (the codes, shown once; their argon2 hashes, stored)."""
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        hashes = await asyncio.gather(*(self._hash(c.replace("-", "")) for c in codes))
        return codes, list(hashes)

    async def _enabled_secret(self, user_id: int) -> str:
        """The sealed TOTP secret of a user with TOTP on; TOTP_NOT_ENABLED (409) while it is off."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_enabled, totp_secret FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise _user_unknown()
        if not row[0]:
            raise AuthError("TOTP_NOT_ENABLED", "two-factor authentication is off", 409)
        return str(row[1])

    async def totp_disable(self, user_id: int, code: str | None) -> None:
        """Turn TOTP off with a current code (its time step is used up like any other; a recovery
        code is not accepted): the secret and the recovery codes are erased, and the user is
        mailed a notice. TOTP_NOT_ENABLED (409) while it is off."""
        sealed = await self._enabled_secret(user_id)
        await self._second_factor(user_id, sealed, code, allow_recovery=False)
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
        await self._second_factor(user_id, sealed, code, allow_recovery=False)
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

    async def check_totp(self, user_id: int, code: str | None) -> None:
        """Pass when TOTP is off or ``code`` is a current code not used before (its time step is
        then used up); else TOTP_REQUIRED / TOTP_INVALID / TOTP_REUSED. Recovery codes are
        accepted only by ``login``."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT totp_enabled, totp_secret FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise _user_unknown()
        if row[0]:
            await self._second_factor(user_id, str(row[1]), code, allow_recovery=False)

    def _totp_steps(self, user_id: int, sealed: str, code: str) -> list[int]:
        """The time steps, of now and one either side, whose code ``code`` is (ascending)."""
        if not _TOTP_RE.fullmatch(code):
            return []
        totp = pyotp.TOTP(self.box.open(base64.b64decode(sealed), _totp_aad(user_id)).decode())
        now = int(self.clock() // TOTP_STEP_S)
        return [s for s in (now - 1, now, now + 1) if hmac.compare_digest(totp.generate_otp(s), code)]

    async def _use_totp_step(self, user_id: int, steps: list[int]) -> bool:
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

    async def _second_factor(self, user_id: int, sealed: str, code: str | None, *, allow_recovery: bool) -> None:
        if code is None or not code.strip():
            raise AuthError("TOTP_REQUIRED", "two-factor authentication is on for this account: send the current"
                            " 6-digit code of your authenticator app in the request's \"totp\" field"
                            + (" (or one of your recovery codes)" if allow_recovery else ""), 401)
        who = f"totp:{user_id}"
        await self._attempt(who, self.max_failures)
        compact = "".join(code.split())
        reused = False
        if _TOTP_RE.fullmatch(compact):
            steps = self._totp_steps(user_id, sealed, compact)
            ok = bool(steps) and await self._use_totp_step(user_id, steps)
            reused = bool(steps) and not ok
        elif allow_recovery:
            ok = await self._use_recovery_code(user_id, compact.replace("-", "").lower())
        else:
            ok = False
        if not ok:
            log.info("event=totp_failed user=%d reason=%s", user_id, "reused" if reused else "wrong")
            raise _totp_reused() if reused else AuthError("TOTP_INVALID", "wrong authentication code", 401)
        await self._clear(who)

    async def _use_recovery_code(self, user_id: int, code: str) -> bool:
        """Use up the matching recovery code, if any (the row is locked meanwhile)."""
        if not _RECOVERY_RE.fullmatch(code):
            return False
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT recovery_codes FROM users WHERE id = %s FOR UPDATE", (user_id,))
            row = await cur.fetchone()
            hashes: list[str] = list(row[0]) if row is not None else []
            matches = await asyncio.gather(*(self._verify(h, code) for h in hashes))
            for hashed, ok in zip(hashes, matches, strict=True):
                if ok:
                    await conn.execute(
                        "UPDATE users SET recovery_codes = array_remove(recovery_codes, %s) WHERE id = %s",
                        (hashed, user_id),
                    )
                    log.info("event=recovery_code_used user=%d left=%d", user_id, len(hashes) - 1)
                    return True
        return False

    # -- e-mail: verification and password reset --

    async def email_status(self, user_id: int) -> dict[str, Any]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT email, email_verified_at FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        if row is None:
            raise _user_unknown()
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
        wait = await self._count(f"mail:verify:{user_id}", MAILS_PER_ADDRESS, MAIL_WINDOW_S)
        if wait is not None:
            raise AuthError("TOO_MANY_ATTEMPTS", f"a link was mailed several times already; try again in "
                                                 f"{int(wait + 0.999)} s", 429)
        await self._mail_link(user_id, str(status["email"]), "verify")

    async def verify_email(self, token: str) -> int:
        """Follow a verification link: its user's address is verified; returns the user id.
        TOKEN_INVALID, TOKEN_USED or TOKEN_EXPIRED (400) otherwise."""
        async with self.pool.connection() as conn, conn.transaction():
            user_id, email = await self._use_token(conn, token, "verify")
            cur = await conn.execute(
                "UPDATE users SET email_verified_at = coalesce(email_verified_at, %s) WHERE id = %s AND email = %s"
                " RETURNING id", (_at(self.clock()), user_id, email))
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
            if await self._count(f"mail:reset-from:{ip}", RESET_MAILS_PER_CLIENT, MAIL_WINDOW_S) is not None:
                log.info("event=password_reset_limited per=client")
                return
            if await self._count(f"mail:reset:{address}", MAILS_PER_ADDRESS, MAIL_WINDOW_S) is not None:
                log.info("event=password_reset_limited per=address")
                return
            async with self.pool.connection() as conn:
                cur = await conn.execute("SELECT id FROM users WHERE email = %s", (address,))
                row = await cur.fetchone()
            if row is None:
                log.info("event=password_reset_unknown")
                return
            log.info("event=password_reset_requested user=%d", int(row[0]))
            await self._mail_link(int(row[0]), address, "reset")
        except psycopg.Error as e:
            log.warning("event=password_reset_mail_failed error=%s", type(e).__name__)

    async def reset_password(self, token: str, password: str) -> int:
        """Follow a reset link: the user's password becomes ``password``, every session of the user
        is revoked (as a logout revokes it: sockets closed, every API process told), the reset links mailed before
        are used up, and the address counts as verified (the link reached it). Returns the user id.
        WEAK_PASSWORD before the link is used; TOKEN_INVALID, TOKEN_USED or TOKEN_EXPIRED (400)."""
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise AuthError("WEAK_PASSWORD", f"the password must have {PASSWORD_MIN} to {PASSWORD_MAX} characters", 400)
        password_hash = await self._hash(password)
        now = _at(self.clock())
        async with self.pool.connection() as conn, conn.transaction():
            user_id, email = await self._use_token(conn, token, "reset")
            cur = await conn.execute(
                "UPDATE users SET password_hash = %s, email_verified_at = coalesce(email_verified_at, %s)"
                " WHERE id = %s AND email = %s RETURNING id", (password_hash, now, user_id, email))
            if await cur.fetchone() is None:
                raise AuthError("TOKEN_INVALID", "this link is for an address the account no longer has", 400)
            cur = await conn.execute("UPDATE sessions SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL"
                                     " RETURNING token_hash", (now, user_id))
            revoked = [bytes(r[0]) for r in await cur.fetchall()]
            await conn.execute("UPDATE email_tokens SET used_at = %s WHERE user_id = %s AND purpose = 'reset'"
                               " AND used_at IS NULL", (now, user_id))
        for digest in [d for d, hit in self._sessions.items() if hit[0] == user_id]:
            del self._sessions[digest]
        log.info("event=password_reset user=%d sessions_revoked=%d", user_id, len(revoked))
        for digest in revoked:  # their sockets close, and every API process forgets them at once
            await self._revoked(user_id, digest)
        return user_id

    async def _use_token(self, conn: psycopg.AsyncConnection[TupleRow], token: str, purpose: str) -> tuple[int, str]:
        """Use up a mailed link's token: (user id, the address it was sent to)."""
        if not isinstance(token, str) or not _LINK_TOKEN_RE.fullmatch(token):
            raise AuthError("TOKEN_INVALID", "this link is not valid", 400)
        digest, now = _sha256(token), _at(self.clock())
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

    async def _mail_link(self, user_id: int, address: str, purpose: str) -> None:
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
                    " VALUES (%s, %s, %s, %s, %s, %s)", (_sha256(token), user_id, purpose, address, _at(now),
                                                         _at(now + ttl)))
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
            raise _user_unknown()
        await self.mailer.send(str(row[0]), subject, text)

    async def drain(self) -> None:
        """Wait for the mail sent after an answer (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.mailer is not None:
            await self.mailer.drain()

    # -- API keys --

    async def create_api_key(
        self,
        user_id: int,
        name: str,
        permissions: Iterable[str],
        ip_allow: Iterable[str],
        totp_code: str | None,
    ) -> tuple[str, str]:
        """A new API key: (public key id, secret). The secret is shown once; requests are signed
        with HMAC-SHA256 keyed by its UTF-8 bytes. ``ip_allow`` entries are stored as networks
        ('10.0.0.1' becomes '10.0.0.1/32')."""
        name = name.strip()
        if not 1 <= len(name) <= KEY_NAME_MAX or not name.isprintable():
            raise AuthError("INVALID_NAME", f"the name must have 1 to {KEY_NAME_MAX} printable characters", 400)
        perms = set() if isinstance(permissions, str | bytes) else set(permissions)
        if not perms or not perms <= set(PERMISSIONS):
            raise AuthError("INVALID_PERMISSIONS", f"permissions: a non-empty subset of {', '.join(PERMISSIONS)}", 400)
        networks = _parse_ip_allow(ip_allow)
        await self.check_totp(user_id, totp_code)
        key = "dpg_" + secrets.token_urlsafe(24)
        secret = secrets.token_urlsafe(32)
        sealed = self.box.seal(secret.encode(), _key_aad(key))
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,))
            if await cur.fetchone() is None:
                raise _user_unknown()
            cur = await conn.execute(
                "SELECT count(*) FROM api_keys WHERE user_id = %s AND revoked_at IS NULL", (user_id,)
            )
            live = await cur.fetchone()
            if live is not None and live[0] >= MAX_KEYS_PER_USER:
                raise AuthError("TOO_MANY_KEYS", f"at most {MAX_KEYS_PER_USER} live API keys; revoke one", 409)
            await conn.execute(
                "INSERT INTO api_keys (key, user_id, name, secret_enc, permissions, ip_allow, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (key, user_id, name, sealed, [p for p in PERMISSIONS if p in perms], networks, _at(self.clock())),
            )
        log.info("event=api_key_created user=%d key=%s permissions=%s", user_id, key, ",".join(sorted(perms)))
        return key, secret

    async def list_api_keys(self, user_id: int) -> list[dict[str, Any]]:
        """The user's keys, revoked ones included, oldest first; never their secrets.
        ``last_used_at`` is written at most once a minute per key and API process."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT key, name, permissions, ip_allow, created_at, revoked_at, last_used_at"
                " FROM api_keys WHERE user_id = %s ORDER BY created_at, key",
                (user_id,),
            )
            rows = await cur.fetchall()
        return [
            {
                "key": r[0],
                "name": r[1],
                "permissions": list(r[2]),
                "ip_allow": list(r[3]),
                "created_at": r[4],
                "revoked": r[5] is not None,
                "last_used_at": r[6],
            }
            for r in rows
        ]

    async def revoke_api_key(self, user_id: int, key: str) -> None:
        """Revoke one of the user's keys (again is fine); KEY_UNKNOWN (404) if it is not theirs.
        Other API processes notice within their key cache time (5 s)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE key = %s AND user_id = %s"
                " RETURNING key",
                (_at(self.clock()), key, user_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise AuthError("KEY_UNKNOWN", "no such API key", 404)
        self._keys.pop(key, None)
        log.info("event=api_key_revoked user=%d key=%s", user_id, key)
        await self._revoked(user_id, key)

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
            self._sessions.pop(credential, None)
        else:
            self._keys.pop(credential, None)

    async def key_user(self, key: str, client_ip: str, need: str) -> int:
        """The user of a live API key that lets ``client_ip`` use the permission ``need``, without a
        signature (for a connection the key signed in before): from the key cache, at most
        ``key_cache_s`` old. The AuthError ``verify_signature`` would raise otherwise."""
        record = await self._key_record(key)
        if record is None:
            raise AuthError("KEY_UNKNOWN", "no such API key", 401)
        _key_allows(record, client_ip, need)
        return record.user_id

    async def verify_signature(
        self,
        key: str,
        signature_hex: str,
        payload: bytes,
        timestamp_ms: int,
        recv_window_ms: int,
        client_ip: str,
        need: str,
    ) -> int:
        """The user id behind a signed request, checked in this order: the receive window, the
        key, its revocation, the timestamp, the signature (hex HMAC-SHA256 of ``payload``), the
        IP allow-list, the permission ``need``, then that the same signature was not seen before.

        ``payload`` must include the timestamp and the receive window; a signature is remembered
        for as long as its timestamp could pass any receive window (up to 62 s)."""
        if need not in PERMISSIONS:
            raise ValueError(f"unknown permission {need!r}")
        if not 1 <= recv_window_ms <= MAX_RECV_WINDOW_MS:
            raise AuthError("INVALID_RECV_WINDOW", f"recv_window must be 1 to {MAX_RECV_WINDOW_MS} ms", 400)
        record = await self._key_record(key)
        if record is None:
            raise AuthError("KEY_UNKNOWN", "no such API key", 401)
        if record.revoked:
            raise AuthError("KEY_REVOKED", "this API key was revoked", 401)
        now_ms = self.clock() * 1000
        if not now_ms - recv_window_ms <= timestamp_ms <= now_ms + FUTURE_SKEW_MS:
            raise AuthError("STALE_TIMESTAMP", "timestamp outside the receive window; check the clock", 401)
        expected = hmac.new(record.secret, payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature_hex.strip().lower().encode()):
            raise AuthError("BAD_SIGNATURE", "the signature does not match", 401)
        _key_allows(record, client_ip, need)
        ttl_ms = int(timestamp_ms + MAX_RECV_WINDOW_MS - now_ms) + FUTURE_SKEW_MS
        token = hashlib.sha256(f"{key}:{expected}".encode()).hexdigest()
        if not await self.replay.first_seen(token, ttl_ms):
            raise AuthError("REPLAYED", "this request was already received", 401)
        await self._touch(key)
        return record.user_id

    async def _key_record(self, key: str) -> _Key | None:
        """The key's record, from the cache when younger than ``key_cache_s``."""
        if not _KEY_RE.fullmatch(key):
            return None
        now = time.monotonic()
        hit = self._keys.get(key)
        if hit is not None and now - hit[0] < self.key_cache_s:
            return hit[1]
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT user_id, secret_enc, permissions, ip_allow, revoked_at FROM api_keys WHERE key = %s", (key,)
            )
            row = await cur.fetchone()
        if row is None:
            self._keys.pop(key, None)
            return None
        record = _Key(
            user_id=int(row[0]),
            secret=self.box.open(bytes(row[1]), _key_aad(key)),
            permissions=frozenset(row[2]),
            networks=tuple(ipaddress.ip_network(n, strict=False) for n in row[3]),
            revoked=row[4] is not None,
        )
        self._keys[key] = (now, record)
        if now - self._keys_pruned_at >= LAST_USED_EVERY_S:
            self._keys_pruned_at = now
            for k in [k for k, (t, _) in self._keys.items() if now - t >= self.key_cache_s]:
                del self._keys[k]
            for k in [k for k, t in self._touched.items() if now - t >= LAST_USED_EVERY_S]:
                del self._touched[k]
        return record

    async def _touch(self, key: str) -> None:
        """Write last_used_at, at most once a minute per key; a failure is only logged."""
        now = time.monotonic()
        last = self._touched.get(key)
        if last is not None and now - last < LAST_USED_EVERY_S:
            return
        self._touched[key] = now
        try:
            async with self.pool.connection() as conn:
                await conn.execute("UPDATE api_keys SET last_used_at = %s WHERE key = %s", (_at(self.clock()), key))
        except psycopg.Error as e:
            log.warning("event=api_key_touch_failed key=%s error=%s", key, type(e).__name__)
