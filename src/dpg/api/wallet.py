"""The wallet API: where to deposit, deposits with their confirmations, the withdrawal address
allow-list, withdrawals and their timeline (tables of 0004_chain.sql and 0010_withdrawals.sql).

Where to deposit is the account's own address on the chain (its forwarder, 0014_deposit_addresses.sql),
which takes plain transfers from any wallet or exchange; asking for it issues it, so that the
chain's sweeper watches it. The vault call tagged with the account stays as the advanced way.

A withdrawal request is checked here (an allow-listed address on a custody chain that carries the
asset, 2FA when the user has it on, the per-account daily limit), written as ``requesting``, then
the engine locks the funds (``RequestWithdrawal``); the chain's broadcaster takes it from there.

(No ``from __future__ import annotations`` here: FastAPI must see the route parameters' local
``Annotated`` dependencies as objects, not names.)
"""

import re
import secrets
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from dpg.api.errors import ApiError
from dpg.chain.forwarder import forwarder_address, payment_uri, token_name
from dpg.chain.signer import checksum
from dpg.chain.sweeper import ISSUE
from dpg.core.commands import FailWithdrawal, RequestWithdrawal
from dpg.core.model import Asset

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
NATIVE = "0x" + "00" * 20
STEPS_SHOWN = ("requested", "signed 1/3", "signed 2/3", "signed 3/3", "broadcast", "confirmed", "completed")


class AddressRequest(BaseModel):
    chain: str = Field(min_length=1, max_length=32)
    address: str = Field(min_length=42, max_length=42)
    label: str = Field(default="", max_length=64)
    totp: str | None = Field(default=None, max_length=16)


class WithdrawalRequest(BaseModel):
    asset: str = Field(min_length=1, max_length=12)
    chain: str = Field(min_length=1, max_length=32)
    address: str = Field(min_length=42, max_length=42)
    amount: str = Field(min_length=1, max_length=64, description="a decimal string in the asset's units")
    totp: str | None = Field(default=None, max_length=16)


def checksum_ok(address: str) -> bool:
    """A mixed-case address must carry a valid EIP-55 checksum; all-lower or all-upper is accepted."""
    body = address[2:]
    if body.lower() == body or body.upper() == body:
        return True
    return checksum(address) == address


def router(rt: Any, auth: Callable[..., Any], admin: Callable[..., Any]) -> APIRouter:
    """``auth``: the dependency giving the caller's principal; ``admin``: the operator's. The limits
    are the runtime's ``withdrawal_daily_limits`` (per asset, decimal strings: the most an account
    may withdraw in 24 hours) and ``withdrawal_ttl`` (seconds to the signed deadline)."""
    r = APIRouter(tags=["wallet"])
    pool = rt.accounts.pool
    Principal = Annotated[Any, Depends(auth)]

    async def chains() -> dict[str, dict[str, Any]]:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT name, chain_id, vault, confirmations, native_asset, tokens FROM chains"
                                     " ORDER BY name")
            rows = await cur.fetchall()
        return {n: {"chain": n, "chain_id": int(cid), "vault": v, "confirmations": int(c), "native_asset": na,
                    "tokens": t} for n, cid, v, c, na, t in rows}

    def token_for(chain: dict[str, Any], asset: str) -> str | None:
        if chain["native_asset"] == asset:
            return NATIVE
        return next((str(t["address"]) for t in chain["tokens"] if t["asset"] == asset), None)

    def asset_of(symbol: str) -> Asset:
        a: Asset = rt.trading.asset(symbol)
        return a

    @r.get("/api/v1/wallet/chains")
    async def list_chains() -> list[dict[str, Any]]:
        """The custody chains: vault, confirmation depth, and which token carries which asset."""
        out = []
        for c in (await chains()).values():
            assets = ([{"asset": c["native_asset"], "token": NATIVE, "symbol": c["native_asset"]}]
                      if c["native_asset"] else [])
            assets += [{"asset": t["asset"], "token": t["address"], "symbol": t["symbol"]} for t in c["tokens"]]
            out.append({"chain": c["chain"], "chain_id": c["chain_id"], "vault": c["vault"],
                        "confirmations": c["confirmations"], "assets": assets})
        return out

    @r.get("/api/v1/wallet/deposit-address")
    async def deposit_address(p: Principal, chain: Annotated[str, Query(max_length=32)]) -> dict[str, Any]:
        """Your own deposit address on ``chain`` (``address``: null on a chain without deposit
        addresses), each asset it takes as wallets name it with an EIP-681 URI for a QR code and the
        least that is swept; ``advanced``: the vault call tagged with your account."""
        c = (await chains()).get(chain)
        if c is None:
            raise ApiError(404, "UNKNOWN_CHAIN", f"no custody chain {chain!r}")
        advanced = {"vault": c["vault"], "account": p.user_id,
                    "how": f"call depositETH({p.user_id}) with value, or approve the vault and call "
                           f"depositToken(token, amount, {p.user_id}) on the vault {c['vault']}; "
                           f"credited after {c['confirmations']} confirmations",
                    "uri": f"ethereum:{c['vault']}@{c['chain_id']}/depositETH?uint64={p.user_id}"}
        address: str | None = None
        minimum: dict[str, str] = {}
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT factory, code_hash, min_sweep FROM deposit_address_chains"
                                     " WHERE chain = %s", (chain,))
            row = await cur.fetchone()
            if row is not None:
                address, minimum = forwarder_address(row[0], row[1], p.user_id), row[2]
                await conn.execute(ISSUE, (chain, p.user_id, address))
        held = ([(c["native_asset"], c["native_asset"], NATIVE)] if c["native_asset"] else []) + [
            (str(t["asset"]), str(t["symbol"]), str(t["address"])) for t in c["tokens"]]
        assets = [{"asset": a, "symbol": symbol, "token": token, "name": token_name(symbol, chain),
                   "uri": payment_uri(address, c["chain_id"], token) if address else None,
                   "min_deposit": asset_of(a).format(int(minimum[a])) if a in minimum else None}
                  for a, symbol, token in held]
        names = ", ".join(x["name"] for x in assets)
        how = (f"send {names} to {address} from any wallet or exchange, on {chain} only (chain id {c['chain_id']});"
               f" no tag or memo is needed; credited after {c['confirmations']} confirmations once the exchange"
               f" has moved it into the vault") if address else advanced["how"]
        return {"chain": chain, "chain_id": c["chain_id"], "account": p.user_id, "confirmations": c["confirmations"],
                "address": address, "assets": assets, "how": how,
                "uri": payment_uri(address, c["chain_id"]) if address else advanced["uri"],
                "vault": c["vault"], "advanced": advanced}

    @r.get("/api/v1/wallet/deposits")
    async def deposits(p: Principal, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
        """Deposits into the vault with their confirmations (pending n/N, credited), and, before them,
        what arrived at your deposit address and waits to be moved into the vault (``received``)."""
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT chain, tx_hash, log_index, block_number, asset, amount, status, confirmations, required,"
                " seen_at, credited_at FROM deposits WHERE account = %s"
                " UNION ALL SELECT a.chain, a.tx_hash, a.log_index, a.block_number, a.asset, a.amount, 'received', 0,"
                " c.confirmations, a.seen_at, NULL FROM deposit_arrivals a JOIN chains c ON c.name = a.chain"
                " WHERE a.account = %s AND (a.status = 'received' OR (a.status = 'swept' AND a.sweep_tx IS NOT NULL"
                " AND NOT EXISTS (SELECT 1 FROM deposits d WHERE d.chain = a.chain AND d.tx_hash = a.sweep_tx)))"
                " ORDER BY seen_at DESC LIMIT %s",
                (p.user_id, p.user_id, limit))
            rows = await cur.fetchall()
        return [{"chain": ch, "tx_hash": tx, "log_index": li, "block_number": bn, "asset": a,
                 "amount": asset_of(a).format(int(am)), "status": st, "confirmations": min(int(cf), int(rq)),
                 "required": int(rq), "seen_at": int(seen.timestamp() * 1000),
                 "credited_at": int(cr.timestamp() * 1000) if cr else None}
                for ch, tx, li, bn, a, am, st, cf, rq, seen, cr in rows]

    # ------------------------------------------------------------------ allow-list

    @r.get("/api/v1/wallet/addresses")
    async def addresses(p: Principal) -> list[dict[str, Any]]:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT chain, address, label, created_at FROM withdrawal_addresses"
                                     " WHERE account = %s ORDER BY created_at", (p.user_id,))
            rows = await cur.fetchall()
        return [{"chain": c, "address": a, "label": lb, "created_at": int(t.timestamp() * 1000)}
                for c, a, lb, t in rows]

    @r.post("/api/v1/wallet/addresses", status_code=201)
    async def add_address(req: AddressRequest, p: Principal) -> dict[str, Any]:
        await rt.accounts.check_totp(p.user_id, req.totp)
        c = (await chains()).get(req.chain)
        if c is None:
            raise ApiError(404, "UNKNOWN_CHAIN", f"no custody chain {req.chain!r}")
        if not ADDRESS.fullmatch(req.address) or not checksum_ok(req.address):
            raise ApiError(400, "INVALID_ADDRESS", "an address is 0x and 40 hex digits (a mixed-case one must "
                                                   "carry its EIP-55 checksum)")
        address = req.address.lower()
        tokens = {str(t["address"]) for t in c["tokens"]}
        if address == NATIVE or address == c["vault"] or address in tokens:
            raise ApiError(400, "INVALID_ADDRESS", "not the zero address, the vault or a token contract")
        async with pool.connection() as conn:
            await conn.execute("INSERT INTO withdrawal_addresses (account, chain, address, label) VALUES"
                               " (%s, %s, %s, %s) ON CONFLICT (account, chain, address) DO UPDATE SET"
                               " label = excluded.label", (p.user_id, req.chain, address, req.label))
        return {"chain": req.chain, "address": address, "label": req.label}

    @r.delete("/api/v1/wallet/addresses/{chain}/{address}")
    async def remove_address(chain: Annotated[str, Field(max_length=32)],
                             address: Annotated[str, Field(max_length=42)], p: Principal) -> dict[str, bool]:
        async with pool.connection() as conn:
            cur = await conn.execute("DELETE FROM withdrawal_addresses WHERE account = %s AND chain = %s"
                                     " AND address = %s", (p.user_id, chain, address.lower()))
        if cur.rowcount == 0:
            raise ApiError(404, "ADDRESS_NOT_FOUND", "no such address on the allow-list")
        return {"ok": True}

    # ------------------------------------------------------------------ withdrawals

    @r.post("/api/v1/withdrawals", status_code=201)
    async def withdraw(req: WithdrawalRequest, p: Principal) -> dict[str, Any]:
        await rt.accounts.check_totp(p.user_id, req.totp)
        a = asset_of(req.asset)
        amount = rt.trading._units(a.to_units, req.amount, "amount")
        if amount <= 0:
            raise ApiError(400, "INVALID_AMOUNT", "the amount must be positive")
        c = (await chains()).get(req.chain)
        if c is None:
            raise ApiError(404, "UNKNOWN_CHAIN", f"no custody chain {req.chain!r}")
        token = token_for(c, a.symbol)
        if token is None:
            raise ApiError(400, "ASSET_NOT_ON_CHAIN", f"{a.symbol} cannot be withdrawn on {req.chain}")
        if not ADDRESS.fullmatch(req.address):
            raise ApiError(400, "INVALID_ADDRESS", "an address is 0x and 40 hex digits")
        address = req.address.lower()
        wid = "0x" + secrets.token_bytes(32).hex()
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT 1 FROM withdrawal_addresses WHERE account = %s AND chain = %s"
                                     " AND address = %s", (p.user_id, req.chain, address))
            if await cur.fetchone() is None:
                raise ApiError(403, "ADDRESS_NOT_ALLOWED", "add the address to your withdrawal allow-list first")
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (p.user_id,))
            cur = await conn.execute(
                "SELECT coalesce(sum(amount), 0) FROM withdrawals WHERE account = %s AND asset = %s"
                " AND status <> 'failed' AND created_at > now() - interval '24 hours'", (p.user_id, a.symbol))
            row = await cur.fetchone()
            used = int(row[0]) if row else 0
            limit = a.to_units(rt.withdrawal_daily_limits.get(a.symbol, "0"))
            if used + amount > limit:
                raise ApiError(400, "WITHDRAWAL_LIMIT", f"at most {a.format(limit)} {a.symbol} in 24 hours;"
                                                        f" {a.format(max(0, limit - used))} left")
            await conn.execute(
                "INSERT INTO withdrawals (id, account, asset, amount, chain, chain_id, vault, token, to_address,"
                " deadline, status, required) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'requesting', %s)",
                (wid, p.user_id, a.symbol, amount, req.chain, c["chain_id"], c["vault"], token, address,
                 int(time.time()) + rt.withdrawal_ttl, c["confirmations"]))
        try:
            seq, _ = await rt.trading._submit(RequestWithdrawal(p.user_id, a.symbol, amount, wid,
                                                                f"{req.chain}:{address}"))
        except ApiError:
            async with pool.connection() as conn:
                await conn.execute("DELETE FROM withdrawals WHERE id = %s AND status = 'requesting'", (wid,))
            raise
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute("UPDATE withdrawals SET status = 'signing', request_seq = %s,"
                                     " updated_at = now() WHERE id = %s AND status = 'requesting'", (seq, wid))
            moved = cur.rowcount == 1
            if moved:
                await conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail)"
                                   " VALUES (%s, 'requested', %s)", (wid, f"seq {seq}"))
        if not moved:  # the pipeline gave up on it meanwhile: unlock what was locked
            await rt.trading.bus.submit(FailWithdrawal(wid, "the request was not confirmed in time"))
            raise ApiError(503, "UNAVAILABLE", "the withdrawal could not be recorded; nothing was withdrawn")
        return await one(wid, p.user_id)

    async def one(wid: str, account: int | None) -> dict[str, Any]:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, account, asset, amount, chain, to_address, status, confirmations, required, tx_hash,"
                " reason, deadline, executable_at, created_at, updated_at FROM withdrawals WHERE id = %s"
                " AND (%s::numeric IS NULL OR account = %s)", (wid, account, account))
            row = await cur.fetchone()
            if row is None:
                raise ApiError(404, "WITHDRAWAL_NOT_FOUND", "no such withdrawal")
            cur = await conn.execute("SELECT count(*) FROM withdrawal_signatures WHERE withdrawal_id = %s", (wid,))
            sigs = await cur.fetchone()
            cur = await conn.execute("SELECT at, step, detail FROM withdrawal_events WHERE withdrawal_id = %s"
                                     " ORDER BY at", (wid,))
            events = await cur.fetchall()
        (i, acct, asset, amount, chain, to, status, conf, req, tx, reason, deadline, exec_at, created, updated) = row
        return {"id": i, "account": int(acct), "asset": asset, "amount": asset_of(asset).format(int(amount)),
                "chain": chain, "address": to, "status": status, "signatures": min(int(sigs[0]) if sigs else 0, 3),
                "required_signatures": 3, "confirmations": min(int(conf), int(req)), "required_confirmations": int(req),
                "tx_hash": tx, "reason": reason, "deadline": int(deadline) * 1000,
                "executable_at": int(exec_at) * 1000 if exec_at else None,
                "created_at": int(created.timestamp() * 1000), "updated_at": int(updated.timestamp() * 1000),
                "timeline": [{"at": int(at.timestamp() * 1000), "step": step, "detail": detail}
                             for at, step, detail in events]}

    @r.get("/api/v1/withdrawals")
    async def withdrawals(p: Principal, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT id FROM withdrawals WHERE account = %s AND status <> 'requesting'"
                                     " ORDER BY created_at DESC LIMIT %s", (p.user_id, limit))
            ids = [r[0] for r in await cur.fetchall()]
        return [await one(i, p.user_id) for i in ids]

    @r.get("/api/v1/withdrawals/{wid}")
    async def withdrawal(wid: Annotated[str, Field(max_length=66)], p: Principal) -> dict[str, Any]:
        return await one(wid.lower(), p.user_id)

    @r.get("/api/v1/admin/withdrawals", dependencies=[Depends(admin)], tags=["operator"])
    async def all_withdrawals(status: Annotated[str | None, Query(max_length=16)] = None,
                              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT id FROM withdrawals WHERE (%s::text IS NULL OR status = %s)"
                                     " ORDER BY created_at DESC LIMIT %s", (status, status, limit))
            ids = [r[0] for r in await cur.fetchall()]
        return [await one(i, None) for i in ids]

    return r
