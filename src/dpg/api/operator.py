"""What an operator (or a script) does from the command line: create users and API keys on the
exchange's database, open a new user's ledger account and credit balances through the running
exchange (journaled commands, like every balance change). Names without an '@' stand for
``NAME@users.dpg.local``."""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.request
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dpg.config import Settings
from dpg.identity import Accounts, AuthError, MemoryReplayGuard, SecretBox

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


def create_user(url: str, settings: Settings, name: str, api: str) -> dict[str, Any]:
    """A new user; its ledger account opened on the running exchange at ``api`` (http://host:port;
    ``account_open`` false when no exchange answers: it opens when the exchange starts)."""
    from dpg.api.server import admin_token

    password = secrets.token_urlsafe(18)

    async def work(accounts: Accounts, _: AsyncConnectionPool) -> dict[str, Any]:
        uid = await accounts.sign_up(email_of(name), password, verified=True)  # the operator vouches
        return {"id": uid, "name": name, "email": email_of(name), "password": password}

    result: dict[str, Any] = asyncio.run(_with_accounts(url, settings, work))
    result["account_open"] = open_account(api, admin_token(settings), result["id"])
    return result


def open_account(base: str, token: str, uid: int) -> bool:
    """Through the running exchange's operator API; False when it cannot be reached or refuses."""
    body = json.dumps({"user_id": uid}).encode()
    req = urllib.request.Request(f"{base}/api/v1/admin/accounts", method="POST", data=body,  # noqa: S310
                                 headers={"X-DPG-Admin-Token": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30):  # noqa: S310 (an http URL of the operator's)
            return True
    except OSError:  # HTTPError included
        return False


def create_api_key(url: str, settings: Settings, name: str, permissions: list[str]) -> dict[str, Any]:
    async def work(accounts: Accounts, pool: AsyncConnectionPool) -> dict[str, Any]:
        uid = await _user_id(pool, name)
        key, secret = await accounts.create_api_key(uid, "operator", set(permissions), [], None)
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
    body = json.dumps({"user_id": uid, "asset": asset, "amount": amount, "reference": reference}).encode()
    req = urllib.request.Request(f"{base}/api/v1/admin/credits", method="POST", data=body,  # noqa: S310
                                 headers={"X-DPG-Admin-Token": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (an http URL of the operator's)
        out: dict[str, Any] = json.loads(resp.read())
    return out

