"""The vault's escape hatch over HTTP, for the /proof/exit page: the transaction (to, data, value,
chain id) of each action of a v2 proof file — request a forced withdrawal, freeze, claim — for the
exit address's wallet to send, and the proof's status on the chain (countdowns, frozen, claimed).

Public and a pure function of the proof file and the chain (dpg.chain.escape, the same code as
``dpg exit``): the exchange signs and sends nothing here. The calldata is ABI-encoded on the server
by eth_abi rather than by hand in the browser: one encoder of the Vault's LeafV2 struct, tested with
the contracts; a user without the exchange uses ``dpg exit`` or any wallet with the Vault's ABI.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations as objects.)
"""

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dpg.api.deps import Rt
from dpg.api.errors import ApiError
from dpg.api.runtime import Runtime
from dpg.chain import escape
from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable

router = APIRouter()


class ExitRequest(BaseModel):
    proof: dict[str, Any] = Field(description="a v2 proof file, as /api/v1/por/proof answers it")


class ExitTransactionRequest(ExitRequest):
    action: str = Field(description="request | freeze_unserved | freeze_silent | claim", max_length=20)
    request_id: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{64}$",
                                   description="freeze_unserved: the request (default: the account's open one)")


async def _rpc_url(rt: Runtime, chain_id: str) -> str:
    """The exchange's JSON-RPC URL of the proof's chain (a custody chain, else the registry's public one)."""
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT rpc_url FROM chains WHERE chain_id::text = %s UNION ALL"
                                 " SELECT rpc_url FROM por_registry WHERE chain_id::text = %s AND rpc_url <> ''",
                                 (chain_id, chain_id))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(400, "UNKNOWN_CHAIN", f"the exchange has no JSON-RPC URL of chain {chain_id}")
    return str(row[0])


async def _exit(rt: Runtime, proof: dict[str, Any]) -> escape.Exit:
    url = await _rpc_url(rt, str(proof.get("chainId", "")))
    try:
        return await asyncio.to_thread(escape.Exit, proof, Rpc(url))
    except escape.ProofFileError as e:
        raise ApiError(400, "INVALID_PROOF", str(e)) from None
    except (RpcError, RpcUnavailable, OSError) as e:
        raise ApiError(503, "CHAIN_UNAVAILABLE", f"the proof's chain cannot be read: {e}") from None


@router.post("/api/v1/exit/transaction", tags=["public"])
async def exit_transaction(rt: Rt, req: ExitTransactionRequest) -> dict[str, Any]:
    """The transaction of an escape-hatch action for the proof's exit address to send."""
    e = await _exit(rt, req.proof)
    try:
        return await asyncio.to_thread(e.transaction, req.action, req.request_id.lower() if req.request_id else None)
    except escape.ProofFileError as err:
        raise ApiError(400, "INVALID_ACTION", str(err)) from None


@router.post("/api/v1/exit/status", tags=["public"])
async def exit_status(rt: Rt, req: ExitRequest) -> dict[str, Any]:
    """The proof's account on the chain: its forced withdrawal requests with their countdowns, when the
    exchange counts as silent, whether the vault is frozen and whether this leaf was claimed."""
    e = await _exit(rt, req.proof)
    try:
        return await asyncio.to_thread(e.status)
    except (RpcError, RpcUnavailable, OSError) as err:
        raise ApiError(503, "CHAIN_UNAVAILABLE", f"the proof's chain cannot be read: {err}") from None
