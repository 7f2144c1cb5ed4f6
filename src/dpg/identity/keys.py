"""API keys: a public id and a secret (sealed in the database, shown once), permissions and an IP
allow-list; their records cached a few seconds per process, and when each was last used."""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from dpg.identity.errors import AuthError, user_unknown
from dpg.identity.sealing import SecretBox
from dpg.identity.sessions import RevocationHook
from dpg.identity.store import Pool, SharedReads, at
from dpg.identity.totp import Totp

log = logging.getLogger("dpg.identity")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PERMISSIONS = ("read", "trade", "withdraw")
KEY_NAME_MAX = 64
MAX_KEYS_PER_USER = 20
MAX_IP_ALLOW = 100
LAST_USED_EVERY_S = 60.0

_KEY_RE = re.compile(r"dpg_[A-Za-z0-9_-]{32}")


def parse_ip_allow(ip_allow: Iterable[str]) -> list[str]:
    """An IP allow-list as networks ('10.0.0.1' becomes '10.0.0.1/32'), without repeats; INVALID_IP
    (400) for anything else or more than MAX_IP_ALLOW entries."""
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


def ip_allowed(client_ip: str, networks: tuple[Network, ...]) -> bool:
    """Whether ``client_ip`` (an IPv4-mapped IPv6 address as its IPv4) is in one of ``networks``."""
    try:
        addr = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def _key_aad(key: str) -> bytes:
    return b"dpg.api_key:" + key.encode()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    user_id: int
    secret: bytes
    permissions: frozenset[str]
    networks: tuple[Network, ...]
    revoked: bool


def key_allows(record: KeyRecord, client_ip: str, need: str) -> None:
    """Raise unless the key is live and lets ``client_ip`` use the permission ``need``."""
    if record.revoked:
        raise AuthError("KEY_REVOKED", "this API key was revoked", 401)
    if record.networks and not ip_allowed(client_ip, record.networks):
        raise AuthError("IP_NOT_ALLOWED", "this address may not use this API key", 403)
    if need not in record.permissions:
        raise AuthError("PERMISSION_DENIED", f"this API key lacks the {need} permission", 403)


class ApiKeys:
    """Secrets sealed with ``box``; a new key needs the user's TOTP code when TOTP is on;
    ``revoked`` is told of each key revoked; records are cached ``cache_s`` seconds."""

    def __init__(self, pool: Pool, box: SecretBox, clock: Callable[[], float], totp: Totp, revoked: RevocationHook,
                 *, cache_s: float) -> None:
        self.pool = pool
        self.box = box
        self.clock = clock
        self.totp = totp
        self.revoked = revoked
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, KeyRecord]] = {}  # key -> (monotonic time fetched, record)
        self._touched: dict[str, float] = {}  # key -> monotonic time last_used_at was written
        self._pruned_at = time.monotonic()
        self._reads: SharedReads[str, KeyRecord | None] = SharedReads(self._keep)

    async def create(self, user_id: int, name: str, permissions: Iterable[str], ip_allow: Iterable[str],
                     totp_code: str | None) -> tuple[str, str]:
        """A new API key: (public key id, secret). The secret is shown once; requests are signed
        with HMAC-SHA256 keyed by its UTF-8 bytes. ``ip_allow`` entries are stored as networks
        ('10.0.0.1' becomes '10.0.0.1/32')."""
        name = name.strip()
        if not 1 <= len(name) <= KEY_NAME_MAX or not name.isprintable():
            raise AuthError("INVALID_NAME", f"the name must have 1 to {KEY_NAME_MAX} printable characters", 400)
        perms = set() if isinstance(permissions, str | bytes) else set(permissions)
        if not perms or not perms <= set(PERMISSIONS):
            raise AuthError("INVALID_PERMISSIONS", f"permissions: a non-empty subset of {', '.join(PERMISSIONS)}", 400)
        networks = parse_ip_allow(ip_allow)
        await self.totp.check(user_id, totp_code)
        key = "dpg_" + secrets.token_urlsafe(24)
        secret = secrets.token_urlsafe(32)
        sealed = self.box.seal(secret.encode(), _key_aad(key))
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,))
            if await cur.fetchone() is None:
                raise user_unknown()
            cur = await conn.execute(
                "SELECT count(*) FROM api_keys WHERE user_id = %s AND revoked_at IS NULL", (user_id,)
            )
            live = await cur.fetchone()
            if live is not None and live[0] >= MAX_KEYS_PER_USER:
                raise AuthError("TOO_MANY_KEYS", f"at most {MAX_KEYS_PER_USER} live API keys; revoke one", 409)
            await conn.execute(
                "INSERT INTO api_keys (key, user_id, name, secret_enc, permissions, ip_allow, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (key, user_id, name, sealed, [p for p in PERMISSIONS if p in perms], networks, at(self.clock())),
            )
        log.info("event=api_key_created user=%d key=%s permissions=%s", user_id, key, ",".join(sorted(perms)))
        return key, secret

    async def of_user(self, user_id: int) -> list[dict[str, Any]]:
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

    async def revoke(self, user_id: int, key: str) -> None:
        """Revoke one of the user's keys (again is fine); KEY_UNKNOWN (404) if it is not theirs.
        Other API processes notice within their key cache time (5 s)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE key = %s AND user_id = %s"
                " RETURNING key",
                (at(self.clock()), key, user_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise AuthError("KEY_UNKNOWN", "no such API key", 404)
        self._cache.pop(key, None)
        self._reads.drop(key)
        log.info("event=api_key_revoked user=%d key=%s", user_id, key)
        await self.revoked(user_id, key)

    def forget(self, key: str) -> None:
        """Drop a key from this process's cache."""
        self._cache.pop(key, None)
        self._reads.drop(key)

    async def user(self, key: str, client_ip: str, need: str) -> int:
        """The user of a live API key that lets ``client_ip`` use the permission ``need``, without a
        signature (for a connection the key signed in before): from the key cache, at most
        ``cache_s`` old. The AuthError a signature check would raise otherwise."""
        record = await self.record(key)
        if record is None:
            raise AuthError("KEY_UNKNOWN", "no such API key", 401)
        key_allows(record, client_ip, need)
        return record.user_id

    async def record(self, key: str) -> KeyRecord | None:
        """The key's record, from the cache when younger than ``cache_s``."""
        if not _KEY_RE.fullmatch(key):
            return None
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        record = await self._reads.get(key, self._read)
        if record is None:
            self._cache.pop(key, None)
        return record

    async def _read(self, key: str) -> KeyRecord | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT user_id, secret_enc, permissions, ip_allow, revoked_at FROM api_keys WHERE key = %s", (key,)
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return KeyRecord(
            user_id=int(row[0]),
            secret=self.box.open(bytes(row[1]), _key_aad(key)),
            permissions=frozenset(row[2]),
            networks=tuple(ipaddress.ip_network(n, strict=False) for n in row[3]),
            revoked=row[4] is not None,
        )

    def _keep(self, key: str, record: KeyRecord | None) -> None:
        """Cache a record just read (``SharedReads`` calls it unless the key was revoked meanwhile)."""
        if record is None:
            return
        now = time.monotonic()
        self._cache[key] = (now, record)
        if now - self._pruned_at >= LAST_USED_EVERY_S:
            self._pruned_at = now
            for k in [k for k, (t, _) in self._cache.items() if now - t >= self.cache_s]:
                del self._cache[k]
            for k in [k for k, t in self._touched.items() if now - t >= LAST_USED_EVERY_S]:
                del self._touched[k]

    async def touch(self, key: str) -> None:
        """Write last_used_at, at most once a minute per key; a failure is only logged."""
        now = time.monotonic()
        last = self._touched.get(key)
        if last is not None and now - last < LAST_USED_EVERY_S:
            return
        self._touched[key] = now
        try:
            async with self.pool.connection() as conn:
                await conn.execute("UPDATE api_keys SET last_used_at = %s WHERE key = %s", (at(self.clock()), key))
        except psycopg.Error as e:
            log.warning("event=api_key_touch_failed key=%s error=%s", key, type(e).__name__)
