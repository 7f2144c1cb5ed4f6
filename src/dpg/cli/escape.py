"""``dpg exit …``: a user's way out through the vault's escape hatch, with nothing but a v2 proof file
(``/api/v1/por/proof``), a JSON-RPC node and the exit address's key — no exchange needed.

``request`` asks the vault for a forced withdrawal of the proof's asset; ``freeze`` freezes the
vault when the request was left unserved past the grace period (``freezeUnserved``), else when no
proof was published for the silence period (``freezeSilent``); ``claim`` pays the leaf's balance
(adjusted by the account's deposits and payouts since the snapshot) to the exit address once the
vault is frozen; ``status`` shows the countdowns, whether the vault is frozen and whether the leaf
was claimed. Each prints one JSON object; a refusal is said in words, exit code 1 (2: bad input).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from dpg.cli.context import fail

exit_app = typer.Typer(help="The vault's escape hatch: forced withdrawal, freeze, claim (with a v2 proof file)",
                       no_args_is_help=True)

ProofFile = Annotated[Path, typer.Argument(help="The v2 proof file (JSON) downloaded from the exchange")]
RpcUrl = Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the vault's chain")]
KeyFile = Annotated[str, typer.Option("--key", help="File holding the exit address's key (0x + 64 hex), or the key")]

REFUSALS = {
    "NotExitAddress": "the key is not the leaf's exit address",
    "InvalidProof": "the proof does not hold against the registry's root (a later epoch is published: use its proof)",
    "RequestOpen": "a forced withdrawal of this asset is already open for this account",
    "VaultFrozen": "the vault is frozen: claim instead",
    "NotFrozen": "the vault is not frozen: a claim waits for a freeze",
    "GraceNotOver": "the exchange's grace period to serve the request is not over",
    "NotSilent": "the exchange published a proof within the silence period",
    "AlreadyClaimed": "this leaf was claimed already",
    "AlreadyServed": "the request was served",
    "UnknownRequest": "no such request",
}


def _exit(proof_file: Path, rpc_url: str) -> Any:
    """The proof file's Exit on the node at ``rpc_url``; bad input: exit 2, an unreachable node: 1."""
    from dpg.chain import escape
    from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable

    try:
        proof = json.loads(proof_file.read_text())
    except (OSError, ValueError) as e:
        raise fail(f"cannot read the proof file {proof_file}: {e}", 2) from None
    if not isinstance(proof, dict):
        raise fail(f"{proof_file} is not a proof file (a JSON object)", 2)
    rpc = Rpc(rpc_url)
    try:
        chain_id = rpc.chain_id()
        if str(chain_id) != str(proof.get("chainId")):
            raise fail(f"the node at {rpc_url} is chain {chain_id}; the proof is for chain {proof.get('chainId')}", 2)
        return escape.Exit(proof, rpc)
    except escape.ProofFileError as e:
        raise fail(str(e), 2) from None
    except (RpcError, RpcUnavailable, OSError) as e:
        raise fail(f"cannot read the registry {proof.get('registry')} at {rpc_url}: {e}", 1) from None


def _amount(asset: str, units: int) -> str:
    from dpg.cli.custody import _amount as decimal

    return decimal(asset, units)


def _send(e: Any, key_text: str, action: str) -> dict[str, Any]:
    """Send the action's transaction from the exit address's key; the receipt. A refusal: exit 1, in words."""
    from dpg.chain.broadcaster import fees, send_raw, sign_tx
    from dpg.chain.contracts import decode_error
    from dpg.chain.escape import ProofFileError
    from dpg.chain.rpc import RpcError, to_int
    from dpg.chain.signer import load_key

    try:
        key = load_key(key_text, "--key")
    except ValueError as err:
        raise fail(str(err), 2) from None
    if key.address.lower() != e.exit_address:
        raise fail(f"the key is {key.address.lower()}, not the proof's exit address {e.exit_address}", 2)
    try:
        tx = e.transaction(action)
    except ProofFileError as err:
        raise fail(str(err), 1) from None
    try:
        gas = to_int(e.rpc.call("eth_estimateGas", [{"from": key.address, "to": tx["to"], "data": tx["data"]}]))
    except RpcError as err:
        raise fail(_refusal(e, decode_error("Vault", err.data or "") or err.message), 1) from None
    nonce = to_int(e.rpc.call("eth_getTransactionCount", [key.address, "pending"]))
    tip, max_fee = fees(e.rpc)
    raw, tx_hash = sign_tx(key, e.chain_id, tx["to"], tx["data"], nonce, gas * 5 // 4, tip, max_fee)
    send_raw(e.rpc, raw)
    receipt: dict[str, Any] = e.rpc.wait_receipt(tx_hash, timeout=120)
    if to_int(receipt["status"]) != 1:
        raise fail(f"the transaction {tx_hash} reverted", 1)
    return receipt


def _refusal(e: Any, reason: str) -> str:
    name = reason.split("(", 1)[0]
    words = REFUSALS.get(name)
    if words is None:
        return f"the vault refuses: {reason}"
    if name in ("GraceNotOver", "NotSilent") and "(" in reason:
        at = int(reason.split("(", 1)[1].rstrip(")"))
        return f"the vault refuses ({name}): {words}; possible from {_utc(at)} (in {max(0, at - e.now())} s)"
    return f"the vault refuses ({name}): {words}"


def _utc(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


@exit_app.command("request")
def exit_request(proof: ProofFile, rpc: RpcUrl, key: KeyFile) -> None:
    """Ask the vault for a forced withdrawal of the proof's asset (from the exit address)."""
    from dpg.chain import escape

    e = _exit(proof, rpc)
    receipt = _send(e, key, "request")
    request_id = escape.request_id_of(receipt, e.vault)
    grace = escape.view_uint(e.rpc, e.vault, "forcedGrace()")
    requested_at = escape.forced_request(e.rpc, e.vault, request_id).requested_at if request_id else 0
    typer.echo(json.dumps({"action": "request", "tx_hash": receipt["transactionHash"], "request_id": request_id,
                           "account": e.account, "asset": e.asset, "exit_address": e.exit_address,
                           "proven_balance": _amount(e.asset, int(e.proof["balance"])),
                           "requested_at": requested_at, "grace_ends_at": requested_at + grace,
                           "grace_ends": _utc(requested_at + grace)}))


@exit_app.command("freeze")
def exit_freeze(proof: ProofFile, rpc: RpcUrl, key: KeyFile) -> None:
    """Freeze the vault: for the account's open request left unserved past the grace period, else
    for the exchange's silence (no proof published for the silence period)."""
    from dpg.chain import escape

    e = _exit(proof, rpc)
    if escape.frozen(e.rpc, e.vault):
        raise fail("the vault is frozen already: claim", 1)
    open_request = e.open_request()
    silent = e.silent_from()
    if open_request is not None and open_request["seconds_left"] == 0:
        action = "freeze_unserved"
    elif silent <= e.now():
        action = "freeze_silent"
    elif open_request is not None:
        raise fail(f"not yet: the grace period of request {open_request['request_id']} ends at"
                   f" {_utc(open_request['grace_ends_at'])} (in {open_request['seconds_left']} s), and the exchange"
                   f" is silent from {_utc(silent)}", 1)
    else:
        raise fail(f"not yet: no open forced withdrawal request, and the exchange is silent only from {_utc(silent)}"
                   f" (in {silent - e.now()} s); request a forced withdrawal first (dpg exit request)", 1)
    receipt = _send(e, key, action)
    typer.echo(json.dumps({"action": "freeze", "reason": "unserved" if action == "freeze_unserved" else "silent",
                           "request_id": open_request["request_id"] if action == "freeze_unserved" else None,
                           "tx_hash": receipt["transactionHash"],
                           "frozen_epoch": escape.view_uint(e.rpc, e.vault, "frozenEpoch()")}))


@exit_app.command("claim")
def exit_claim(proof: ProofFile, rpc: RpcUrl, key: KeyFile) -> None:
    """Claim the leaf's balance (adjusted by later deposits and payouts) from the frozen vault to the exit address."""
    from eth_abi.abi import decode

    from dpg.chain import escape

    e = _exit(proof, rpc)
    receipt = _send(e, key, "claim")
    amount = 0
    for lg in receipt.get("logs", []):
        topics = [str(t).lower() for t in lg.get("topics", [])]
        if topics and topics[0] == escape.CLAIMED_TOPIC and str(lg.get("address", "")).lower() == e.vault:
            _, units = decode(["address", "uint256"], bytes.fromhex(str(lg["data"])[2:]))
            amount = int(units)
    typer.echo(json.dumps({"action": "claim", "tx_hash": receipt["transactionHash"], "account": e.account,
                           "asset": e.asset, "to": e.exit_address, "amount": _amount(e.asset, amount),
                           "base_units": str(amount), "proven_balance": _amount(e.asset, int(e.proof["balance"]))}))


@exit_app.command("status")
def exit_status(proof: ProofFile, rpc: RpcUrl) -> None:
    """The account's forced withdrawal requests with their countdowns, the silence countdown, whether
    the vault is frozen and whether this leaf was claimed."""
    e = _exit(proof, rpc)
    typer.echo(json.dumps(e.status(), indent=2))
