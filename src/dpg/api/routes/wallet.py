"""The wallet API: where to deposit, deposits with their confirmations, the withdrawal address
allow-list, the client addresses withdrawals may come from, the fee quote, withdrawals, their
timeline and their cancellation (tables of 0004_chain.sql, 0010_withdrawals.sql, 0013_custody.sql).

Where to deposit is the account's own address on the chain (its forwarder, 0014_deposit_addresses.sql),
which takes plain transfers from any wallet or exchange; asking for it issues it, so that the
chain's sweeper watches it. The vault call tagged with the account stays as the advanced way.

A withdrawal request is checked here (from a client address on the account's withdrawal IP list, to
an allow-listed address past its waiting period on a custody chain that carries the asset, 2FA when
the user has it on, the per-account daily limit), written as ``requesting``, then the engine locks
the funds (``RequestWithdrawal``); the chain's broadcaster takes it from there. Until its third
signature the user may cancel it: the row is locked against a signer meanwhile, and the engine
returns the funds (``FailWithdrawal``).

(No ``from __future__ import annotations`` here: FastAPI reads the annotations as objects.)
"""

import ipaddress
import logging
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from dpg.api.deps import Auth, Rt, admin, client_ip
from dpg.api.errors import ApiError
from dpg.api.runtime import Runtime
from dpg.chain.config import NATIVE  # the token address of the native coin, as the chain code names it
from dpg.chain.forwarder import forwarder_address, payment_uri, token_name
from dpg.chain.signer import checksum
from dpg.chain.sweeper import ISSUE
from dpg.chain.withdrawals import CANCELLED_BY_USER
from dpg.core.commands import FailWithdrawal, RequestWithdrawal
from dpg.core.errors import Reject
from dpg.core.model import Asset
from dpg.identity import Accounts
from dpg.identity.keys import ip_allowed, parse_ip_allow

log = logging.getLogger("dpg.api.wallet")

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
STEPS_SHOWN = ("requested", "signed 1/3", "signed 2/3", "signed 3/3", "broadcast", "confirmed", "completed")


class AddressRequest(BaseModel):
    chain: str = Field(min_length=1, max_length=32)
    address: str = Field(min_length=42, max_length=42)
    label: str = Field(default="", max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$", description="no control characters")
    totp: str | None = Field(default=None, max_length=16)


class IpAllowRequest(BaseModel):
    networks: list[str] = Field(max_length=32, description="IP addresses or networks (CIDR); empty: any address")
    totp: str | None = Field(default=None, max_length=16)


class WithdrawalRequest(BaseModel):
    asset: str = Field(min_length=1, max_length=12)
    chain: str = Field(min_length=1, max_length=32)
    address: str = Field(min_length=42, max_length=42)
    amount: str = Field(min_length=1, max_length=64, description="a decimal string in the asset's units")
    totp: str | None = Field(default=None, max_length=16)


def withdrawal_fee(asset: Asset, amount: int) -> int:
    """The fee of withdrawing ``amount`` base units of ``asset``, in the same units: none today (the
    exchange pays the gas). Shown by the quote and carried by every withdrawal."""
    return 0


async def notify_address_added(accounts: Accounts, account: int, chain: str, address: str, label: str,
                               usable_at: datetime) -> None:
    """A new address on ``account``'s withdrawal allow-list: the user is mailed that it becomes
    usable at ``usable_at``, so that an address added by someone else is noticed during its waiting
    period. A mail that cannot be sent is logged; the address stays added."""
    when = usable_at.astimezone(UTC).isoformat(timespec="seconds")
    log.info("event=address_added account=%d chain=%s address=%s usable_at=%s", account, chain, address, when)
    try:
        await accounts.mail_user(account, "A new withdrawal address on your DPG account", (
            "Hello,\n\n"
            f"the address {address} ({label or 'no label'}) on {chain} was added to your DPG account's\n"
            f"withdrawal allow-list. Withdrawals to it are possible from {_utc(usable_at)}.\n\n"
            "If you did not add it, log in, remove it from the allow-list (Wallet) and change your password\n"
            "before then.\n"))
    except Exception as e:  # the mail is a notice: the address was added either way
        log.warning("event=address_mail_failed account=%d error=%r", account, str(e) or type(e).__name__)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def checksum_ok(address: str) -> bool:
    """A mixed-case address must carry a valid EIP-55 checksum; all-lower or all-upper is accepted."""
    body = address[2:]
    if body.lower() == body or body.upper() == body:
        return True
    return checksum(address) == address


def local_rpc(url: str) -> str | None:
    """The RPC URL when it points at this machine (the embedded dev chains, a local node), else None."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return url if host in ("127.0.0.1", "localhost", "::1") else None


# The limits are the runtime's ``withdrawal_daily_limits`` (per asset, decimal strings: the most an
# account may withdraw in 24 hours), ``withdrawal_ttl`` (seconds to the signed deadline) and
# ``address_cooldown`` (seconds before a newly allow-listed address may be used; 0: at once).
router = APIRouter(tags=["wallet"])


async def chains(rt: Runtime) -> dict[str, dict[str, Any]]:
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT name, chain_id, vault, confirmations, native_asset, tokens, rpc_url"
                                 " FROM chains ORDER BY name")
        rows = await cur.fetchall()
    return {n: {"chain": n, "chain_id": int(cid), "vault": v, "confirmations": int(c), "native_asset": na,
                "tokens": t, "rpc_url": local_rpc(url)} for n, cid, v, c, na, t, url in rows}


def token_for(chain: dict[str, Any], asset: str) -> str | None:
    if chain["native_asset"] == asset:
        return NATIVE
    return next((str(t["address"]) for t in chain["tokens"] if t["asset"] == asset), None)


def asset_of(rt: Runtime, symbol: str) -> Asset:
    a: Asset = rt.trading.asset(symbol)
    return a


async def ip_networks(rt: Runtime, account: int) -> list[str]:
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT networks FROM withdrawal_ip_allow WHERE account = %s", (account,))
        row = await cur.fetchone()
    return list(row[0]) if row else []


async def check_ip(rt: Runtime, account: int, request: Request) -> None:
    """Withdrawals and changes to the allow-lists come only from the account's listed addresses."""
    networks = await ip_networks(rt, account)
    ip = client_ip(request)
    if networks and not ip_allowed(ip, tuple(ipaddress.ip_network(n) for n in networks)):
        log.info("event=withdrawal_ip_refused account=%d ip=%s", account, ip)
        raise ApiError(403, "WITHDRAWAL_IP_NOT_ALLOWED",
                       f"this request comes from {ip}, which is not on your withdrawal IP list: withdrawals and"
                       " allow-list changes are accepted only from the addresses listed there")


@router.get("/api/v1/wallet/chains")
async def list_chains(rt: Rt) -> list[dict[str, Any]]:
    """The custody chains: vault, confirmation depth, which token carries which asset, the
    JSON-RPC URL of a dev chain on this machine (a chain reached by URL: null, since its URL may
    carry the operator's provider key), and the seconds before a newly allow-listed withdrawal
    address is usable (``address_cooldown_s``)."""
    out = []
    for c in (await chains(rt)).values():
        assets = ([{"asset": c["native_asset"], "token": NATIVE, "symbol": c["native_asset"]}]
                  if c["native_asset"] else [])
        assets += [{"asset": t["asset"], "token": t["address"], "symbol": t["symbol"]} for t in c["tokens"]]
        out.append({"chain": c["chain"], "chain_id": c["chain_id"], "vault": c["vault"],
                    "confirmations": c["confirmations"], "assets": assets, "rpc_url": c["rpc_url"],
                    "address_cooldown_s": rt.address_cooldown})
    return out


@router.get("/api/v1/wallet/deposit-address")
async def deposit_address(rt: Rt, p: Auth, chain: Annotated[str, Query(max_length=32)]) -> dict[str, Any]:
    """Your own deposit address on ``chain`` (``address``: null on a chain without deposit
    addresses), each asset it takes as wallets name it with an EIP-681 URI for a QR code and the
    least that is swept; ``advanced``: the vault call tagged with your account."""
    c = (await chains(rt)).get(chain)
    if c is None:
        raise ApiError(404, "UNKNOWN_CHAIN", f"no custody chain {chain!r}")
    advanced = {"vault": c["vault"], "account": p.user_id,
                "how": f"call depositETH({p.user_id}) with value, or approve the vault and call "
                       f"depositToken(token, amount, {p.user_id}) on the vault {c['vault']}; "
                       f"credited after {c['confirmations']} confirmations",
                "uri": f"ethereum:{c['vault']}@{c['chain_id']}/depositETH?uint64={p.user_id}"}
    address: str | None = None
    minimum: dict[str, str] = {}
    async with rt.accounts.pool.connection() as conn:
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
               "min_deposit": asset_of(rt, a).format(int(minimum[a])) if a in minimum else None}
              for a, symbol, token in held]
    names = ", ".join(x["name"] for x in assets)
    how = (f"send {names} to {address} from any wallet or exchange, on {chain} only (chain id {c['chain_id']});"
           f" no tag or memo is needed; credited after {c['confirmations']} confirmations once the exchange"
           f" has moved it into the vault") if address else advanced["how"]
    return {"chain": chain, "chain_id": c["chain_id"], "account": p.user_id, "confirmations": c["confirmations"],
            "address": address, "assets": assets, "how": how,
            "uri": payment_uri(address, c["chain_id"]) if address else advanced["uri"],
            "vault": c["vault"], "advanced": advanced}


@router.get("/api/v1/wallet/deposits")
async def deposits(rt: Rt, p: Auth, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    """Deposits into the vault with their confirmations (pending n/N, credited), and, before them,
    what arrived at your deposit address and waits to be moved into the vault (``received``)."""
    async with rt.accounts.pool.connection() as conn:
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
             "amount": asset_of(rt, a).format(int(am)), "status": st, "confirmations": min(int(cf), int(rq)),
             "required": int(rq), "seen_at": int(seen.timestamp() * 1000),
             "credited_at": int(cr.timestamp() * 1000) if cr else None}
            for ch, tx, li, bn, a, am, st, cf, rq, seen, cr in rows]


# ------------------------------------------------------------------ allow-list


@router.get("/api/v1/wallet/addresses")
async def addresses(rt: Rt, p: Auth) -> list[dict[str, Any]]:
    """The withdrawal allow-list; an address is usable for withdrawals from ``usable_at`` on."""
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT chain, address, label, created_at, usable_at, usable_at <= now()"
                                 " FROM withdrawal_addresses WHERE account = %s ORDER BY created_at", (p.user_id,))
        rows = await cur.fetchall()
    return [{"chain": c, "address": a, "label": lb, "created_at": _ms(t), "usable_at": _ms(u), "usable": ok}
            for c, a, lb, t, u, ok in rows]


@router.post("/api/v1/wallet/addresses", status_code=201)
async def add_address(rt: Rt, req: AddressRequest, p: Auth, request: Request) -> dict[str, Any]:
    """Add an address (with the 2FA code when 2FA is on); usable after the waiting period."""
    await check_ip(rt, p.user_id, request)
    await rt.accounts.require_verified_email(p.user_id)
    await rt.accounts.check_totp(p.user_id, req.totp)
    c = (await chains(rt)).get(req.chain)
    if c is None:
        raise ApiError(404, "UNKNOWN_CHAIN", f"no custody chain {req.chain!r}")
    if not ADDRESS.fullmatch(req.address) or not checksum_ok(req.address):
        raise ApiError(400, "INVALID_ADDRESS", "an address is 0x and 40 hex digits (a mixed-case one must "
                                               "carry its EIP-55 checksum)")
    address = req.address.lower()
    tokens = {str(t["address"]) for t in c["tokens"]}
    if address == NATIVE or address == c["vault"] or address in tokens:
        raise ApiError(400, "INVALID_ADDRESS", "not the zero address, the vault or a token contract")
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO withdrawal_addresses (account, chain, address, label, usable_at) VALUES"
            " (%s, %s, %s, %s, now() + make_interval(secs => %s)) ON CONFLICT (account, chain, address)"
            " DO UPDATE SET label = excluded.label RETURNING usable_at, created_at, (xmax = 0)",
            (p.user_id, req.chain, address, req.label, rt.address_cooldown))
        row = await cur.fetchone()
    assert row is not None
    usable_at, created, new = row
    if new:
        await notify_address_added(rt.accounts, p.user_id, req.chain, address, req.label, usable_at)
    return {"chain": req.chain, "address": address, "label": req.label, "created_at": _ms(created),
            "usable_at": _ms(usable_at), "usable": usable_at <= datetime.now(UTC)}


@router.delete("/api/v1/wallet/addresses/{chain}/{address}")
async def remove_address(rt: Rt, chain: Annotated[str, Field(max_length=32)],
                         address: Annotated[str, Field(max_length=42)], p: Auth,
                         request: Request) -> dict[str, bool]:
    await check_ip(rt, p.user_id, request)
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("DELETE FROM withdrawal_addresses WHERE account = %s AND chain = %s"
                                 " AND address = %s", (p.user_id, chain, address.lower()))
    if cur.rowcount == 0:
        raise ApiError(404, "ADDRESS_NOT_FOUND", "no such address on the allow-list")
    return {"ok": True}


# ------------------------------------------------------------------ client addresses (IP)


@router.get("/api/v1/wallet/ip-allow")
async def ip_allow(rt: Rt, p: Auth, request: Request) -> dict[str, Any]:
    """The client addresses (networks) withdrawals and allow-list changes are accepted from;
    empty: any. ``your_address`` is the one this request came from."""
    return {"networks": await ip_networks(rt, p.user_id), "your_address": client_ip(request)}


@router.put("/api/v1/wallet/ip-allow")
async def set_ip_allow(rt: Rt, req: IpAllowRequest, p: Auth, request: Request) -> dict[str, Any]:
    """Replace the list (with the 2FA code when 2FA is on), from an address the current list
    allows; a non-empty list must include the address the request comes from, so that it can
    be changed again."""
    await check_ip(rt, p.user_id, request)
    await rt.accounts.check_totp(p.user_id, req.totp)
    networks = parse_ip_allow(req.networks)
    ip = client_ip(request)
    if networks and not ip_allowed(ip, tuple(ipaddress.ip_network(n) for n in networks)):
        raise ApiError(400, "IP_ALLOW_LOCKOUT", f"the list must include the address this request comes from"
                                                f" ({ip}): without it you could not change the list again")
    async with rt.accounts.pool.connection() as conn:
        if networks:
            await conn.execute("INSERT INTO withdrawal_ip_allow (account, networks) VALUES (%s, %s)"
                               " ON CONFLICT (account) DO UPDATE SET networks = excluded.networks,"
                               " updated_at = now()", (p.user_id, networks))
        else:
            await conn.execute("DELETE FROM withdrawal_ip_allow WHERE account = %s", (p.user_id,))
    log.info("event=withdrawal_ip_list_set account=%d networks=%d", p.user_id, len(networks))
    return {"networks": networks, "your_address": ip}


# ------------------------------------------------------------------ withdrawals


async def checked(rt: Runtime, asset: str, chain: str, amount_text: str) -> tuple[Asset, dict[str, Any], str, int, int]:
    """(asset, chain, token, amount, fee) of a withdrawal, checked."""
    a = asset_of(rt, asset)
    amount = rt.trading.units(a, amount_text, "amount")
    if amount <= 0:
        raise ApiError(400, "INVALID_AMOUNT", "the amount must be positive")
    c = (await chains(rt)).get(chain)
    if c is None:
        raise ApiError(404, "UNKNOWN_CHAIN", f"no custody chain {chain!r}")
    token = token_for(c, a.symbol)
    if token is None:
        raise ApiError(400, "ASSET_NOT_ON_CHAIN", f"{a.symbol} cannot be withdrawn on {chain}")
    fee = withdrawal_fee(a, amount)
    if fee >= amount:
        raise ApiError(400, "AMOUNT_BELOW_FEE", f"the fee is {a.format(fee)} {a.symbol}: withdraw more than that")
    return a, c, token, amount, fee


@router.get("/api/v1/wallet/withdrawal-quote")
async def withdrawal_quote(rt: Rt, p: Auth, asset: Annotated[str, Query(max_length=12)],
                           chain: Annotated[str, Query(max_length=32)],
                           amount: Annotated[str, Query(max_length=64, description="a decimal string")],
                           address: Annotated[str | None, Query(max_length=42)] = None) -> dict[str, Any]:
    """What a withdrawal would cost before it is sent: the amount, the fee (zero today), what
    arrives, and the destination (with whether it is on the allow-list and from when usable)."""
    a, _, token, units, fee = await checked(rt, asset, chain, amount)
    destination: dict[str, Any] = {"chain": chain, "token": token, "address": None, "allow_listed": None,
                                   "usable_at": None}
    if address is not None:
        if not ADDRESS.fullmatch(address):
            raise ApiError(400, "INVALID_ADDRESS", "an address is 0x and 40 hex digits")
        async with rt.accounts.pool.connection() as conn:
            cur = await conn.execute("SELECT usable_at FROM withdrawal_addresses WHERE account = %s"
                                     " AND chain = %s AND address = %s", (p.user_id, chain, address.lower()))
            row = await cur.fetchone()
        destination.update(address=address.lower(), allow_listed=row is not None,
                           usable_at=_ms(row[0]) if row else None)
    return {"asset": a.symbol, "amount": a.format(units), "fee": a.format(fee), "fee_asset": a.symbol,
            "receive": a.format(units - fee), "destination": destination}


@router.post("/api/v1/withdrawals", status_code=201)
async def withdraw(rt: Rt, req: WithdrawalRequest, p: Auth, request: Request) -> dict[str, Any]:
    await check_ip(rt, p.user_id, request)
    await rt.accounts.require_verified_email(p.user_id)
    await rt.accounts.check_totp(p.user_id, req.totp)
    a, c, token, amount, fee = await checked(rt, req.asset, req.chain, req.amount)
    if not ADDRESS.fullmatch(req.address):
        raise ApiError(400, "INVALID_ADDRESS", "an address is 0x and 40 hex digits")
    address = req.address.lower()
    wid = "0x" + secrets.token_bytes(32).hex()
    async with rt.accounts.pool.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT usable_at FROM withdrawal_addresses WHERE account = %s AND chain = %s"
                                 " AND address = %s", (p.user_id, req.chain, address))
        listed = await cur.fetchone()
        if listed is None:
            raise ApiError(403, "ADDRESS_NOT_ALLOWED", "add the address to your withdrawal allow-list first")
        if listed[0] > datetime.now(UTC):
            raise ApiError(403, "ADDRESS_COOLING_DOWN", f"a newly allow-listed address is usable for withdrawals"
                                                        f" from {_utc(listed[0])} on")
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
            "INSERT INTO withdrawals (id, account, asset, amount, fee, chain, chain_id, vault, token, to_address,"
            " deadline, status, required) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'requesting', %s)",
            (wid, p.user_id, a.symbol, amount, fee, req.chain, c["chain_id"], c["vault"], token, address,
             int(time.time()) + rt.withdrawal_ttl, c["confirmations"]))
    try:
        seq, _ = await rt.trading._submit(RequestWithdrawal(p.user_id, a.symbol, amount, wid,
                                                            f"{req.chain}:{address}"))
    except ApiError:
        async with rt.accounts.pool.connection() as conn:
            await conn.execute("DELETE FROM withdrawals WHERE id = %s AND status = 'requesting'", (wid,))
        raise
    async with rt.accounts.pool.connection() as conn, conn.transaction():
        cur = await conn.execute("UPDATE withdrawals SET status = 'signing', request_seq = %s,"
                                 " updated_at = now() WHERE id = %s AND status = 'requesting'", (seq, wid))
        moved = cur.rowcount == 1
        if moved:
            await conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail)"
                               " VALUES (%s, 'requested', %s)", (wid, f"seq {seq}"))
    if not moved:  # the pipeline gave up on it meanwhile: unlock what was locked
        await rt.trading.bus.submit(FailWithdrawal(wid, "the request was not confirmed in time"))
        raise ApiError(503, "UNAVAILABLE", "the withdrawal could not be recorded; nothing was withdrawn")
    return await withdrawal_json(rt, wid, p.user_id)


async def withdrawal_json(rt: Runtime, wid: str, account: int | None) -> dict[str, Any]:
    """A withdrawal with its timeline (only if it is ``account``'s, unless None)."""
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, account, asset, amount, fee, chain, to_address, status, confirmations, required, tx_hash,"
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
    (i, acct, asset, amount, fee, chain, to, status, conf, req, tx, reason, deadline, exec_at, created,
     updated) = row
    a = asset_of(rt, asset)
    signatures = int(sigs[0]) if sigs else 0
    return {"id": i, "account": int(acct), "asset": asset, "amount": a.format(int(amount)),
            "fee": a.format(int(fee)), "receive": a.format(int(amount) - int(fee)),
            "chain": chain, "address": to, "status": status, "signatures": min(signatures, 3),
            "cancellable": status == "signing" and signatures < 3,
            "required_signatures": 3, "confirmations": min(int(conf), int(req)), "required_confirmations": int(req),
            "tx_hash": tx, "reason": reason, "deadline": int(deadline) * 1000,
            "executable_at": int(exec_at) * 1000 if exec_at else None,
            "created_at": int(created.timestamp() * 1000), "updated_at": int(updated.timestamp() * 1000),
            "timeline": [{"at": int(at.timestamp() * 1000), "step": step, "detail": detail}
                         for at, step, detail in events]}


@router.get("/api/v1/withdrawals")
async def withdrawals(rt: Rt, p: Auth, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM withdrawals WHERE account = %s AND status <> 'requesting'"
                                 " ORDER BY created_at DESC LIMIT %s", (p.user_id, limit))
        ids = [r[0] for r in await cur.fetchall()]
    return [await withdrawal_json(rt, i, p.user_id) for i in ids]


@router.get("/api/v1/withdrawals/{wid}")
async def withdrawal(rt: Rt, wid: Annotated[str, Field(max_length=66)], p: Auth) -> dict[str, Any]:
    return await withdrawal_json(rt, wid.lower(), p.user_id)


@router.delete("/api/v1/withdrawals/{wid}")
async def cancel_withdrawal(rt: Rt, wid: Annotated[str, Field(max_length=66)], p: Auth) -> dict[str, Any]:
    """Cancel your withdrawal while it has fewer than 3 signatures and nothing was sent: its
    funds return at once (the engine's FailWithdrawal, "cancelled by the user") and signers
    refuse it from then on."""
    wid = wid.lower()
    async with rt.accounts.pool.connection() as conn, conn.transaction():
        # the row lock orders this against a signer adding the third signature (add_signature)
        cur = await conn.execute("SELECT status FROM withdrawals WHERE id = %s AND account = %s FOR UPDATE",
                                 (wid, p.user_id))
        row = await cur.fetchone()
        if row is None:
            raise ApiError(404, "WITHDRAWAL_NOT_FOUND", "no such withdrawal")
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM withdrawal_signatures WHERE withdrawal_id = %s),"
            " EXISTS (SELECT 1 FROM withdrawal_transactions WHERE withdrawal_id = %s)", (wid, wid))
        counts = await cur.fetchone()
        signatures, sent = (int(counts[0]), bool(counts[1])) if counts else (0, False)
        if row[0] != "signing" or signatures >= 3 or sent:
            why = f"it is {row[0]}" if row[0] != "signing" else "it has its 3 signatures"
            raise ApiError(409, "WITHDRAWAL_NOT_CANCELLABLE",
                           f"{why}: a withdrawal can be cancelled only before its third signature")
        await conn.execute("UPDATE withdrawals SET status = 'cancelling', reason = %s, updated_at = now()"
                           " WHERE id = %s", (CANCELLED_BY_USER, wid))
        await conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail) VALUES"
                           " (%s, 'cancelled', 'by the user')", (wid,))
    seq: int | None
    try:
        seq, _ = await rt.trading._submit(FailWithdrawal(wid, CANCELLED_BY_USER))
    except ApiError as e:
        if e.code != Reject.WITHDRAWAL_NOT_FOUND.value:
            raise  # the funds return once the engine answers again (the pipeline retries)
        seq = None  # the pipeline returned them meanwhile
    async with rt.accounts.pool.connection() as conn, conn.transaction():
        cur = await conn.execute("UPDATE withdrawals SET status = 'failed', done_seq = coalesce(%s, done_seq),"
                                 " updated_at = now() WHERE id = %s AND status = 'cancelling'", (seq, wid))
        if cur.rowcount == 1:
            await conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail) VALUES"
                               " (%s, 'failed', %s)", (wid, CANCELLED_BY_USER))
    log.info("event=withdrawal_cancelled id=%s account=%d seq=%s", wid, p.user_id, seq)
    return await withdrawal_json(rt, wid, p.user_id)


@router.get("/api/v1/admin/withdrawals", dependencies=[Depends(admin)], tags=["operator"])
async def all_withdrawals(rt: Rt, status: Annotated[str | None, Query(max_length=16)] = None,
                          limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    async with rt.accounts.pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM withdrawals WHERE (%s::text IS NULL OR status = %s)"
                                 " ORDER BY created_at DESC LIMIT %s", (status, status, limit))
        ids = [r[0] for r in await cur.fetchall()]
    return [await withdrawal_json(rt, i, None) for i in ids]
