"""The operator's console API (``/api/v1/console/…``): a logged-in session of a user with the
operator role and 2FA on (``dpg.api.deps.operator``); what it reads is ``dpg.api.console``'s.

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from dpg.api import console
from dpg.api.deps import Limit, Operator, Rt

router = APIRouter(tags=["console"])


@router.get("/api/v1/console/me")
async def me(rt: Rt, uid: Operator) -> dict[str, Any]:
    """The operator signed in (the page asks first: a 403 says why the console is closed)."""
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT email FROM users WHERE id = %s", (uid,))
        row = await cur.fetchone()
    return {"user_id": uid, "email": row[0] if row else None, "role": "operator"}


@router.get("/api/v1/console/health")
async def health(rt: Rt, _: Operator) -> dict[str, Any]:
    """The journal's head and the engine's seq, the projection follower's lag, each chain's head
    and the deposit watcher's lag, the last proof-of-reserves epoch marked and published."""
    out = await console.health(rt.accounts.pool, rt.views.seq)
    ok, reason = rt.status()
    out["ok"], out["reason"] = ok, reason if not ok else ""
    return out


@router.get("/api/v1/console/withdrawals")
async def withdrawals(rt: Rt, _: Operator) -> list[dict[str, Any]]:
    """Withdrawals waiting for signatures (``dpg signer sign`` by a person), oldest first."""
    return await console.awaiting_signatures(rt.accounts.pool,
                                             lambda asset, units: rt.trading.asset(asset).format(units))


@router.get("/api/v1/console/alerts")
async def alerts(rt: Rt, _: Operator, limit: Limit = 100) -> list[dict[str, Any]]:
    """Surveillance alerts with their evidence, newest first (none before surveillance runs)."""
    return await console.alerts(rt.accounts.pool, limit)


@router.get("/api/v1/console/audit")
async def audit_log(rt: Rt, _: Operator, limit: Limit = 100,
                    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                    action: Annotated[str | None, Query(max_length=60)] = None) -> dict[str, Any]:
    """The newest audit entries and whether the whole hash chain verifies (the first bad row if not)."""
    return await console.audit_log(rt.accounts.pool, limit, before, action)


@router.get("/api/v1/console/backups")
async def backups(rt: Rt, _: Operator) -> dict[str, Any]:
    """The backup folder's backups with their verification state (none when there is no folder)."""
    return console.backups(rt.backup_dir)
