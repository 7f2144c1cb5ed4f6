"""The exit address API: the address an account names to claim its funds from the home Vault if
the exchange stops serving withdrawals (``dpg.chain.exit_address``; table of 0020_exit_addresses.sql).

GET shows the registration in force (the one the latest epoch's leaves carry), the one pending
(registered since: the next epoch marked carries it), the next nonce and the EIP-712 typed data to
sign (for ``eth_signTypedData_v4``). POST registers an address with its own signature: the first
needs a logged-in user (and their 2FA code when 2FA is on), a change needs the 2FA code
(TWO_FACTOR_REQUIRED while 2FA is off).

(No ``from __future__ import annotations`` here: FastAPI reads the annotations as objects.)
"""

import logging
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dpg.api.deps import Auth, Rt
from dpg.api.errors import ApiError
from dpg.api.runtime import Runtime
from dpg.chain.exit_address import ADDRESS, ZERO, ExitAddress, check, typed_data
from dpg.chain.signer import SignatureError

log = logging.getLogger("dpg.api.exit_address")

router = APIRouter(tags=["wallet"])


class ExitAddressRequest(BaseModel):
    address: str = Field(min_length=42, max_length=42, description="the exit address, 0x and 40 hex digits")
    signature: str = Field(min_length=132, max_length=132, description="the exit address's EIP-712 signature of "
                                                                       "ExitAddress(account, exitAddress, nonce)")
    nonce: int = Field(ge=0, lt=2**63, description="the account's next nonce (GET /api/v1/exit-address)")
    totp: str | None = Field(default=None, max_length=16)


async def home(rt: Runtime) -> tuple[str, int, str]:
    """(name, chain id, Vault) of the home chain: the chain of the proof-of-reserves registry."""
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT r.chain, r.chain_id, c.vault FROM por_registry r"
                                 " JOIN chains c ON c.name = r.chain")
        row = await cur.fetchone()
    if row is None:
        raise ApiError(409, "NO_REGISTRY", "exit addresses are registered with the home Vault, the chain of the proof "
                                           "of reserves' registry: none is deployed yet")
    return str(row[0]), int(row[1]), str(row[2])


def _entry(row: tuple[Any, ...] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    address, nonce, at = row
    return {"address": address, "nonce": nonce, "registeredAt": int(at.timestamp() * 1000)}


async def state(conn: psycopg.AsyncConnection[Any], account: int) -> dict[str, Any]:
    """The account's registration in force at the latest recorded epoch, the one pending since, and
    its next nonce."""
    cur = await conn.execute("SELECT epoch, ts FROM por_epochs ORDER BY epoch DESC LIMIT 1")
    epoch = await cur.fetchone()
    cur = await conn.execute("SELECT address, nonce, registered_at, registered_at < to_timestamp(%s::numeric / 1e9)"
                             " FROM exit_addresses WHERE account = %s ORDER BY nonce DESC",
                             (int(epoch[1]) if epoch else 0, account))
    rows = await cur.fetchall()
    current = next((r[:3] for r in rows if epoch is not None and r[3]), None)
    pending = rows[0][:3] if rows and not (epoch is not None and rows[0][3]) else None
    return {"current": _entry(current), "pending": _entry(pending), "nextNonce": len(rows),
            "latestEpoch": str(epoch[0]) if epoch else None}


@router.get("/api/v1/exit-address")
async def get_exit_address(rt: Rt, p: Auth, address: Annotated[str | None, Query(
        min_length=42, max_length=42, description="the address to sign for (fills typedData.message)")] = None,
                       ) -> dict[str, Any]:
    """The account's exit address: ``current`` is the one the latest epoch's leaves carry (null:
    the account can prove its balances but not escape with them), ``pending`` one registered since
    (carried from the next epoch marked); ``typedData`` is what the exit address signs for the next
    registration (``address`` fills it in; else the zero address stands in its place)."""
    if address is not None and not ADDRESS.fullmatch(address):
        raise ApiError(400, "INVALID_ADDRESS", "an address is 0x and 40 hex digits")
    chain, chain_id, vault = await home(rt)
    async with rt.accounts.pool.connection() as conn:
        out = await state(conn, p.user_id)
    typed = typed_data(p.user_id, address or ZERO, out["nextNonce"], chain_id, vault)
    two_factor = await rt.accounts.totp_enabled(p.user_id)
    return {"account": p.user_id, "chain": chain, "chainId": str(chain_id), "vault": vault, **out,
            "effectiveFrom": "the next epoch marked after the registration",
            "changeNeedsTwoFactor": True, "twoFactorEnabled": two_factor, "typedData": typed}


@router.post("/api/v1/exit-address", status_code=201)
async def register_exit_address(rt: Rt, req: ExitAddressRequest, p: Auth) -> dict[str, Any]:
    """Register the exit address (its own EIP-712 signature proves control of it). A change of a
    registered address needs the 2FA code. It takes effect from the next epoch marked."""
    if not ADDRESS.fullmatch(req.address) or req.address.lower() == ZERO:
        raise ApiError(400, "INVALID_ADDRESS", "an exit address is 0x and 40 hex digits, not the zero address")
    address = req.address.lower()
    _, chain_id, vault = await home(rt)
    if address == vault:
        raise ApiError(400, "INVALID_ADDRESS", "not the Vault itself")
    async with rt.accounts.pool.connection() as conn:
        before = await state(conn, p.user_id)
    if req.nonce != before["nextNonce"]:
        raise ApiError(409, "BAD_NONCE", f"the account's next exit-address nonce is {before['nextNonce']}")
    reg = ExitAddress(p.user_id, address, req.nonce, chain_id, vault)
    try:
        check(reg, req.signature)
    except SignatureError as e:
        raise ApiError(400, "BAD_SIGNATURE", str(e)) from None
    latest = before["pending"] or before["current"]
    if latest is not None:  # a change
        if latest["address"] == address:
            raise ApiError(409, "EXIT_ADDRESS_UNCHANGED", "this is the account's exit address already")
        if not await rt.accounts.totp_enabled(p.user_id):
            raise ApiError(403, "TWO_FACTOR_REQUIRED", "changing the exit address needs two-factor authentication:"
                                                       " turn it on first (Security)")
    await rt.accounts.check_totp(p.user_id, req.totp)
    async with rt.accounts.pool.connection() as conn:
        try:
            cur = await conn.execute(
                "INSERT INTO exit_addresses (account, nonce, address, signature, chain_id, vault)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING registered_at",
                (p.user_id, req.nonce, address, req.signature.lower(), chain_id, vault))
        except psycopg.errors.UniqueViolation:
            raise ApiError(409, "BAD_NONCE", "another registration took this nonce: ask for the next one") from None
        row = await cur.fetchone()
    assert row is not None
    at: datetime = row[0]
    log.info("event=exit_address_registered account=%d nonce=%d address=%s", p.user_id, req.nonce, address)
    return {"account": p.user_id, "address": address, "nonce": req.nonce, "registeredAt": int(at.timestamp() * 1000),
            "effectiveFrom": "the next epoch marked after the registration"}
