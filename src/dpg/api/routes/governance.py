"""The governed parameters: what they are now and whether governance decides them (public), and the
operator's hand on them (X-DPG-Admin-Token) — each market's fees, halting and resuming it, the
stakers' share of the fees — refused with 409 GOVERNED once governance is enabled.

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from dpg.api.deps import Rt, admin
from dpg.api.presentation import ppm_of, rate
from dpg.api.routes.operator import audited
from dpg.core.commands import Command, HaltMarket, SetFees, SetStakerShare

router = APIRouter(tags=["governance"])
operator = APIRouter(tags=["operator"], dependencies=[Depends(admin)])


@router.get("/api/v1/governance")
async def governance(rt: Rt) -> dict[str, Any]:
    """Whether governance decides the parameters (``enabled``), the stakers' share of the fees, and
    each market's fees and halted state."""
    gov = rt.governance
    return {"enabled": gov.governed, "staker_share": rate(gov.staker_share_ppm),
            "markets": [{"market": m.symbol, "maker_fee": rate(m.maker_fee_ppm), "taker_fee": rate(m.taker_fee_ppm),
                         "halted": m.halted} for m in rt.markets]}


class FeesRequest(BaseModel):
    market: str = Field(max_length=20)
    maker_fee: str = Field(max_length=12, description="a rate, e.g. 0.0008")
    taker_fee: str = Field(max_length=12, description="a rate, e.g. 0.001")


class HaltRequest(BaseModel):
    market: str = Field(max_length=20)
    halted: bool


class StakerShareRequest(BaseModel):
    share: str = Field(max_length=12, description="the stakers' share of the fees, e.g. 0.25")


async def _change(rt: Rt, request: Request, cmd: Command, action: str, details: dict[str, Any]) -> dict[str, Any]:
    """``cmd`` applied (a refusal raised as its ApiError), then kept in the audit log."""
    seq, events = await rt.trading.submit(cmd)
    await audited(rt, request, action, {**details, "seq": seq})
    return {"seq": seq, "changed": bool(events)}


@operator.post("/api/v1/admin/fees")
async def set_fees(rt: Rt, request: Request, req: FeesRequest) -> dict[str, Any]:
    """Set a market's maker and taker fees (from its next fill on)."""
    m = rt.trading.market(req.market)
    maker, taker = ppm_of(req.maker_fee, "maker_fee"), ppm_of(req.taker_fee, "taker_fee")
    out = {"market": m.symbol, "maker_fee": rate(maker), "taker_fee": rate(taker)}
    return {**await _change(rt, request, SetFees(m.symbol, maker, taker, ""), "market.fees", out), **out}


@operator.post("/api/v1/admin/halt")
async def halt(rt: Rt, request: Request, req: HaltRequest) -> dict[str, Any]:
    """Halt a market (no new order, no amendment; cancels go on) or resume it."""
    m = rt.trading.market(req.market)
    out = {"market": m.symbol, "halted": req.halted}
    return {**await _change(rt, request, HaltMarket(m.symbol, req.halted, ""), "market.halt", out), **out}


@operator.post("/api/v1/admin/staker-share")
async def staker_share(rt: Rt, request: Request, req: StakerShareRequest) -> dict[str, Any]:
    """Set the stakers' share of the fees (moved to their reserve each reward period)."""
    share = ppm_of(req.share, "share")
    out = {"staker_share": rate(share)}
    return {**await _change(rt, request, SetStakerShare(share, ""), "staker_share", out), **out}
