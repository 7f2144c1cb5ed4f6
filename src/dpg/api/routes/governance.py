"""The governed parameters: what they are now and whether governance decides them (public), and the
operator's hand on them (X-DPG-Admin-Token) — each market's fees, halting and resuming it, the
stakers' share of the fees — refused with 409 GOVERNED once governance is enabled. Also public: the
governance contracts, the decisions the exchange applied (``gov_changes``, written by the governance
watcher, dpg.chain.govwatch), the governor's proposals and an address's stake and votes (read from
the chain).

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from dpg.api.deps import Rt, admin
from dpg.api.errors import ApiError
from dpg.api.presentation import ppm_of, rate
from dpg.api.runtime import Runtime
from dpg.core.commands import Command, HaltMarket, SetFees, SetStakerShare

router = APIRouter(tags=["governance"])
operator = APIRouter(tags=["operator"], dependencies=[Depends(admin)])


@router.get("/api/v1/governance")
async def governance(rt: Rt) -> dict[str, Any]:
    """Whether governance decides the parameters (``enabled``), the stakers' share of the fees, and
    each market's fees and halted state."""
    gov = rt.governance
    recorded = await _contracts(rt)
    history = []
    if recorded is not None:
        async with rt.accounts.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT change_id, action, market, params, tx_hash, status, seq, reason, seen_at FROM gov_changes"
                " WHERE chain_id = %s ORDER BY change_id DESC LIMIT 200", (recorded["chain_id"],))
            rows = await cur.fetchall()
        history = [{"change_id": int(cid), "action": action, "market": market, "values": values, "tx_hash": tx,
                    "status": status, "seq": None if seq is None else int(seq), "reason": reason,
                    "time": seen.isoformat()}
                   for cid, action, market, values, tx, status, seq, reason, seen in rows]
    contracts = None if recorded is None else {k: v for k, v in recorded.items() if k != "rpc_url"}
    return {"enabled": gov.governed, "staker_share": rate(gov.staker_share_ppm),
            "markets": [{"market": m.symbol, "maker_fee": rate(m.maker_fee_ppm), "taker_fee": rate(m.taker_fee_ppm),
                         "halted": m.halted} for m in rt.markets],
            "contracts": contracts, "history": history}


async def _contracts(rt: Runtime) -> dict[str, Any] | None:
    """The governance contracts the exchange records (None: it runs no chain with them)."""
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT chain_id, token, staking, governor, timelock, params, rpc_url"
                                 " FROM gov_contracts ORDER BY updated_at DESC LIMIT 1")
        row = await cur.fetchone()
    if row is None:
        return None
    cid, token, staking, governor, timelock, params, rpc_url = row
    return {"chain_id": int(cid), "token": token, "staking": staking, "governor": governor, "timelock": timelock,
            "exchange_params": params, "rpc_url": rpc_url}


async def _chain(rt: Runtime) -> tuple[Any, Any]:
    """(an Rpc to the governed chain, its Governance), or 404 NO_GOVERNANCE."""
    from dpg.chain.governance import Governance
    from dpg.chain.rpc import Rpc

    c = await _contracts(rt)
    if c is None:
        raise ApiError(404, "NO_GOVERNANCE", "this exchange runs no chain with governance contracts")
    return Rpc(c["rpc_url"]), Governance(c["token"], c["staking"], c["timelock"], c["governor"],
                                         c["exchange_params"])


def _read_chain(what: str, fn: Any, *args: Any) -> Any:
    from dpg.chain.rpc import RpcError, RpcUnavailable

    try:
        return fn(*args)
    except (RpcError, RpcUnavailable, OSError) as e:
        raise ApiError(503, "CHAIN_UNAVAILABLE", f"{what}: the governance chain does not answer: {e}") from None


def _proposals(rpc: Any, gov: Any) -> list[dict[str, Any]]:
    from dpg.chain.governance import proposal_view, proposals
    from dpg.chain.rpc import to_int

    now = to_int(rpc.block(rpc.block_number())["timestamp"])
    return [proposal_view(rpc, gov, p, now) for p in reversed(proposals(rpc, gov.governor))]


@router.get("/api/v1/governance/proposals")
async def governance_proposals(rt: Rt) -> list[dict[str, Any]]:
    """The governor's proposals, newest first: state, votes (DPG), quorum, vote window, timelock ETA
    and the calls each makes."""
    rpc, gov = await _chain(rt)
    result: list[dict[str, Any]] = await asyncio.to_thread(_read_chain, "proposals", _proposals, rpc, gov)
    return result


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@router.get("/api/v1/governance/account")
async def governance_account(rt: Rt, address: Annotated[str, Query(max_length=42)]) -> dict[str, Any]:
    """An address's DPG, staked DPG, unclaimed USDT reward, votes and delegate."""
    from dpg.chain.governance import account_view

    if not _ADDRESS.match(address):
        raise ApiError(400, "INVALID_ADDRESS", "an address is 0x and 40 hex digits")
    rpc, gov = await _chain(rt)
    result: dict[str, Any] = await asyncio.to_thread(_read_chain, "account", account_view, rpc, gov, address.lower())
    return result


class FeesRequest(BaseModel):
    market: str = Field(max_length=20)
    maker_fee: str = Field(max_length=12, description="a rate, e.g. 0.0008")
    taker_fee: str = Field(max_length=12, description="a rate, e.g. 0.001")


class HaltRequest(BaseModel):
    market: str = Field(max_length=20)
    halted: bool


class StakerShareRequest(BaseModel):
    share: str = Field(max_length=12, description="the stakers' share of the fees, e.g. 0.25")


async def _change(rt: Rt, cmd: Command) -> dict[str, Any]:
    seq, events = await rt.trading.submit(cmd)
    return {"seq": seq, "changed": bool(events)}


@operator.post("/api/v1/admin/fees")
async def set_fees(rt: Rt, req: FeesRequest) -> dict[str, Any]:
    """Set a market's maker and taker fees (from its next fill on)."""
    m = rt.trading.market(req.market)
    maker, taker = ppm_of(req.maker_fee, "maker_fee"), ppm_of(req.taker_fee, "taker_fee")
    return {**await _change(rt, SetFees(m.symbol, maker, taker, "")), "market": m.symbol,
            "maker_fee": rate(maker), "taker_fee": rate(taker)}


@operator.post("/api/v1/admin/halt")
async def halt(rt: Rt, req: HaltRequest) -> dict[str, Any]:
    """Halt a market (no new order, no amendment; cancels go on) or resume it."""
    m = rt.trading.market(req.market)
    return {**await _change(rt, HaltMarket(m.symbol, req.halted, "")), "market": m.symbol, "halted": req.halted}


@operator.post("/api/v1/admin/staker-share")
async def staker_share(rt: Rt, req: StakerShareRequest) -> dict[str, Any]:
    """Set the stakers' share of the fees (moved to their reserve each reward period)."""
    share = ppm_of(req.share, "share")
    return {**await _change(rt, SetStakerShare(share, "")), "staker_share": rate(share)}
