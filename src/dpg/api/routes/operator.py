"""The operator's REST (X-DPG-Admin-Token): credits, opening a signed-up user's ledger account,
marking a proof-of-reserves epoch. Each call taken is written to the audit log as by
``admin-token``, with the client's address and who the caller says they are (``X-DPG-Operator``,
which ``dpg`` commands send).

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

import time
from typing import Any, cast

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from dpg.api.deps import Rt, admin, client_ip
from dpg.api.errors import ApiError
from dpg.api.trading import CreditRequest
from dpg.core import events as E
from dpg.core.commands import MarkEpoch
from dpg.journal.clock import MAX_ADVANCE_NS, ClockFixed
from dpg.store.audit import record_async

router = APIRouter(tags=["operator"], dependencies=[Depends(admin)])


class OpenAccountRequest(BaseModel):
    user_id: int = Field(gt=0, lt=2**62)


async def audited(rt: Rt, request: Request, action: str, details: dict[str, Any]) -> None:
    by = request.headers.get("x-dpg-operator", "")[:100]
    await record_async(rt.accounts.pool, "admin-token", action,
                       {**details, "ip": client_ip(request), **({"by": by} if by else {})})


@router.post("/api/v1/admin/credits", status_code=201)
async def credit(rt: Rt, request: Request, req: CreditRequest) -> dict[str, Any]:
    out = await rt.trading.credit(req)
    await audited(rt, request, "credit", {"user_id": req.user_id, "asset": req.asset, "amount": out.get("amount"),
                                          "reference": req.reference, "seq": out.get("seq")})
    return out


@router.post("/api/v1/admin/accounts", status_code=201)
async def open_account(rt: Rt, request: Request, req: OpenAccountRequest) -> dict[str, Any]:
    """Open a signed-up user's ledger account (``dpg user create`` does); opening again is harmless."""
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM users WHERE id = %s", (req.user_id,))
        if await cur.fetchone() is None:
            raise ApiError(404, "UNKNOWN_ACCOUNT", f"no user with id {req.user_id}")
    if not await rt.open_account(req.user_id):
        raise ApiError(503, "UNAVAILABLE", "the engine did not open the account; it opens at the user's next"
                       " login or when the exchange starts")
    await audited(rt, request, "account.open", {"user_id": req.user_id})
    return {"user_id": req.user_id, "open": True}


@router.post("/api/v1/admin/por/epochs", status_code=201)
async def mark_epoch(rt: Rt, request: Request) -> dict[str, Any]:
    """Mark a proof-of-reserves epoch now (its number: the UTC time in seconds)."""
    epoch = int(time.time())
    seq, events = await rt.bus.submit(MarkEpoch(epoch))
    if not events or events[0][0] != E.EPOCH_MARKED:
        refused = cast(E.Rejected, events[0]) if events else E.Rejected(E.REJECTED, "UNAVAILABLE", "no reply")
        code, reason = refused.code, refused.reason
        raise ApiError(409 if code == "STALE_EPOCH" else 503, code, reason)
    await audited(rt, request, "por.mark_epoch", {"epoch": epoch, "seq": seq})
    return {"epoch": epoch, "seq": seq}


class ClockRequest(BaseModel):
    advance_ms: int = Field(gt=0, le=MAX_ADVANCE_NS // 1_000_000, description="how far to move the clock, in ms")


@router.post("/api/v1/admin/clock")
async def advance_clock(rt: Rt, request: Request, req: ClockRequest) -> dict[str, Any]:
    """Move a dev exchange's clock forward (``DPG_DEV_CLOCK=1``, engine in this process): the next
    commands are stamped that much later, so a perpetual's funding time comes when the operator says.
    Refused (409 CLOCK_FIXED) on any other exchange."""
    if rt.clock is None:
        raise ApiError(409, "CLOCK_FIXED", "the engine's clock is in another process: it moves only on a"
                       " single-process dev exchange started with DPG_DEV_CLOCK=1")
    try:
        offset = rt.clock.advance(req.advance_ms * 1_000_000)
    except ClockFixed as e:
        raise ApiError(409, "CLOCK_FIXED", str(e)) from None
    await audited(rt, request, "clock.advance", {"advance_ms": req.advance_ms, "offset_ms": offset // 1_000_000})
    return {"offset_ms": offset // 1_000_000, "now_ms": rt.clock.now() // 1_000_000}
