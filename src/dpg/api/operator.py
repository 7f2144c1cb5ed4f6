"""What an operator (or a script) does from the command line: create users (operators among them)
and API keys on the exchange's database, open a new user's ledger account and credit balances
through the running exchange (journaled commands, like every balance change). Each is written to
the audit log (``dpg.store.audit``) by who runs the command; the running exchange's operator API
records the calls it takes, told who made them (``X-DPG-Operator``). Names without an '@' stand
for ``NAME@users.dpg.local``."""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.request
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dpg.config import Settings
from dpg.identity import Accounts, AuthError, MemoryReplayGuard, SecretBox
from dpg.store.audit import cli_actor, record_async

LOCAL_DOMAIN = "users.dpg.local"


def email_of(name: str) -> str:
    return name if "@" in name else f"{name}@{LOCAL_DOMAIN}"


async def _with_accounts(url: str, settings: Settings, work: Any) -> Any:
    async with AsyncConnectionPool(url, min_size=1, max_size=2, open=False) as pool:
        accounts = Accounts(pool, SecretBox.from_env_or_file(settings.data_dir), MemoryReplayGuard())
        return await work(accounts, pool)


async def _user_id(pool: AsyncConnectionPool, name: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM users WHERE email = %s", (email_of(name).lower(),))
        row = await cur.fetchone()
    if row is None:
        raise AuthError("USER_UNKNOWN", f"no user {name!r}", 404)
    return int(row[0])


def create_user(url: str, settings: Settings, name: str, api: str, *, operator: bool = False) -> dict[str, Any]:
    """A new user (an operator with ``operator``); its ledger account opened on the running exchange
    at ``api`` (http://host:port; ``account_open`` false when no exchange answers: it opens when the
    exchange starts)."""
    from dpg.api.server import admin_token

    password = secrets.token_urlsafe(18)

    async def work(accounts: Accounts, pool: AsyncConnectionPool) -> dict[str, Any]:
        uid = await accounts.sign_up(email_of(name), password, verified=True)  # the operator vouches
        await record_async(pool, cli_actor(), "user.create", {"user_id": uid, "email": email_of(name).lower()})
        if operator:
            await _grant_operator(pool, uid, email_of(name).lower())
        return {"id": uid, "name": name, "email": email_of(name), "password": password, "operator": operator}

    result: dict[str, Any] = asyncio.run(_with_accounts(url, settings, work))
    result["account_open"] = open_account(api, admin_token(settings), result["id"])
    return result


async def _grant_operator(pool: AsyncConnectionPool, uid: int, email: str) -> bool:
    """The operator role for a user, audited in the same transaction; False when it had it."""
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute("UPDATE users SET role = 'operator' WHERE id = %s AND role <> 'operator'", (uid,))
        if cur.rowcount != 1:
            return False
        await record_async(conn, cli_actor(), "user.grant_operator", {"user_id": uid, "email": email})
    return True


def grant_operator(url: str, settings: Settings, name: str) -> dict[str, Any]:
    """Make a user an operator (the console also needs their 2FA on); ``granted`` false when they were one."""
    async def work(_: Accounts, pool: AsyncConnectionPool) -> dict[str, Any]:
        uid = await _user_id(pool, name)
        granted = await _grant_operator(pool, uid, email_of(name).lower())
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT totp_enabled FROM users WHERE id = %s", (uid,))
            row = await cur.fetchone()
        return {"user_id": uid, "email": email_of(name).lower(), "granted": granted,
                "two_factor": bool(row and row[0])}

    result: dict[str, Any] = asyncio.run(_with_accounts(url, settings, work))
    return result


def _admin_request(base: str, path: str, token: str, body: dict[str, Any]) -> urllib.request.Request:
    """A POST to the running exchange's operator API, saying who asks (for its audit log)."""
    return urllib.request.Request(f"{base}{path}", method="POST", data=json.dumps(body).encode(),  # noqa: S310
                                  headers={"X-DPG-Admin-Token": token, "X-DPG-Operator": cli_actor(),
                                           "Content-Type": "application/json"})


def open_account(base: str, token: str, uid: int) -> bool:
    """Through the running exchange's operator API; False when it cannot be reached or refuses."""
    req = _admin_request(base, "/api/v1/admin/accounts", token, {"user_id": uid})
    try:
        with urllib.request.urlopen(req, timeout=30):  # noqa: S310 (an http URL of the operator's)
            return True
    except OSError:  # HTTPError included
        return False


def create_api_key(url: str, settings: Settings, name: str, permissions: list[str]) -> dict[str, Any]:
    async def work(accounts: Accounts, pool: AsyncConnectionPool) -> dict[str, Any]:
        uid = await _user_id(pool, name)
        key, secret = await accounts.create_api_key(uid, "operator", set(permissions), [], None)
        await record_async(pool, cli_actor(), "apikey.create",
                           {"user_id": uid, "key": key, "permissions": sorted(set(permissions))})
        return {"user_id": uid, "key": key, "secret": secret, "permissions": sorted(set(permissions))}

    result: dict[str, Any] = asyncio.run(_with_accounts(url, settings, work))
    return result


def user_id(url: str, settings: Settings, name: str) -> int:
    async def work(_: Accounts, pool: AsyncConnectionPool) -> int:
        return await _user_id(pool, name)

    result: int = asyncio.run(_with_accounts(url, settings, work))
    return result


def credit(base: str, token: str, uid: int, asset: str, amount: str, reference: str) -> dict[str, Any]:
    """Through the running exchange's operator API: the credit is a journaled command."""
    req = _admin_request(base, "/api/v1/admin/credits", token,
                         {"user_id": uid, "asset": asset, "amount": amount, "reference": reference})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (an http URL of the operator's)
        out: dict[str, Any] = json.loads(resp.read())
    return out

