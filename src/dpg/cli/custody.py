"""``dpg signer …`` (human signers review and sign withdrawals with their own keys) and
``dpg wallet …`` (deposits from a dev chain's funded account, for trying custody by hand).

Both act on the exchange that ``DPG_DATA_DIR`` (or ``DPG_DATABASE_URL``) points at. A signer's key
never leaves their machine: ``sign`` recomputes the EIP-712 digest from the withdrawal's terms and
the chain's vault, signs it locally and stores only the signature, which the pipeline checks again.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from dpg.cli.context import fail, target

signer_app = typer.Typer(help="Withdrawal signers: review, sign or reject pending withdrawals", no_args_is_help=True)
wallet_app = typer.Typer(help="A wallet on the dev chain: deposit to the vault and follow the credit",
                         no_args_is_help=True)

KeyFile = Annotated[str | None, typer.Option("--key-file", help="File holding the signer's key (0x + 64 hex); "
                                                                "default: DPG_SIGNER_KEY")]


def _store() -> Any:
    from dpg.chain.withdrawals import WithdrawalStore

    return WithdrawalStore(target().url)


def _key(key_file: str | None) -> Any:
    from dpg.chain.signer import load_key

    source = key_file or os.environ.get("DPG_SIGNER_KEY", "")
    if not source:
        raise fail("name the signer's key: --key-file FILE or DPG_SIGNER_KEY", 2)
    try:
        return load_key(source, "--key-file" if key_file else "DPG_SIGNER_KEY")
    except ValueError as e:
        raise fail(str(e), 2) from None


def _amount(asset: str, units: int) -> str:
    """Base units as a decimal string of the asset with no trailing zero, e.g. 1500000000000000000 ETH -> "1.5"."""
    from dpg.chain.config import ASSET_DECIMALS
    from dpg.core.model import Asset

    a = Asset(asset, ASSET_DECIMALS.get(asset, 0), index=-1)  # for its format only: no ledger position
    return a.format(units, a.places_of(units))


def _describe(store: Any, w: Any) -> dict[str, Any]:
    return {"id": w.id, "account": w.account, "asset": w.asset, "amount": _amount(w.asset, w.amount),
            "base_units": str(w.amount),
            "chain": w.chain, "chain_id": w.chain_id, "vault": w.vault, "token": w.token, "to": w.to_address,
            "deadline": w.deadline, "status": w.status, "signatures": sorted(store.signatures(w.id)),
            "reviews": {k: list(v) for k, v in store.reviews(w.id).items()}, "reason": w.reason,
            "tx_hash": w.tx_hash, "confirmations": f"{w.confirmations}/{w.required}",
            "forced_request": store.forced_request(w.id)}  # the vault's escape hatch asked for it (dpg.chain.forced)


def _pending(store: Any, wid: str) -> Any:
    w = store.get(wid.lower())
    if w is None:
        raise fail(f"no withdrawal {wid}", 1)
    return w


@signer_app.command("list")
def signer_list(
    show_all: Annotated[bool, typer.Option("--all", help="Every open withdrawal, not only those to sign")] = False,
) -> None:
    """Withdrawals waiting for signatures, then forced withdrawal requests waiting for a zero answer's
    signatures (JSON lines)."""
    from dpg.chain.forced import ForcedStore

    store = _store()
    for w in store.open():
        if show_all or w.status == "signing":
            typer.echo(json.dumps(_describe(store, w)))
    forced = ForcedStore(target().url)
    for f in forced.zero_answers():
        typer.echo(json.dumps({"request_id": f.request_id, "answer": "zero", "chain": f.chain, "account": f.account,
                               "asset": f.asset, "exit_address": f.exit_address, "deadline": f.deadline,
                               "signatures": sorted(forced.signatures(f.request_id)), "reason": f.reason}))


@signer_app.command("show")
def signer_show(wid: Annotated[str, typer.Argument(help="The withdrawal id (0x…)")]) -> None:
    """One withdrawal: its terms, the digest to sign, signatures, transactions and timeline."""
    store = _store()
    w = _pending(store, wid)
    out = _describe(store, w)
    out["digest"] = "0x" + w.terms().digest().hex()
    out["transactions"] = [{"tx_hash": t.tx_hash, "purpose": t.purpose, "nonce": t.nonce, "max_fee": str(t.max_fee)}
                           for t in store.txs(w.id)]
    out["timeline"] = [{"at": at.isoformat(), "step": step, "detail": detail}
                       for at, step, detail in store.events(w.id)]
    typer.echo(json.dumps(out, indent=2))


@signer_app.command("address")
def signer_address(key_file: KeyFile = None) -> None:
    """The address of a signer's key."""
    typer.echo(_key(key_file).address.lower())


def _as_signer(wid: str, key_file: str | None, too_late: str) -> tuple[Any, Any, Any, str]:
    """(key, store, withdrawal, signer address) when the key is one of the vault's signers and the
    withdrawal still takes signatures; else the reason, exit code 1."""
    key = _key(key_file)
    store = _store()
    w = _pending(store, wid)
    chain = store.chain(w.chain)
    who = key.address.lower()
    if chain is None or who not in chain["signers"]:
        raise fail(f"{who} is not a signer of the vault on {w.chain}", 1)
    if w.status != "signing":
        raise fail(f"withdrawal {w.id} is {w.status}: {too_late}", 1)
    if chain["vault"] != w.vault or chain["chain_id"] != w.chain_id:
        raise fail("the withdrawal names another vault or chain than the exchange's", 1)
    return key, store, w, who


@signer_app.command("sign")
def signer_sign(
    wid: Annotated[str, typer.Argument(help="The withdrawal id (0x…)")],
    key_file: KeyFile = None,
) -> None:
    """Sign a withdrawal after reviewing it (``dpg signer show``), or the zero answer of a forced
    withdrawal request whose account had nothing available (its request id)."""
    from dpg.chain.signer import sign
    from dpg.chain.withdrawals import WithdrawalClosed
    from dpg.store.audit import cli_actor

    if _store().get(wid.lower()) is None:
        _sign_zero(wid.lower(), key_file)
        return
    key, store, w, who = _as_signer(wid, key_file, "it takes no more signatures")
    try:
        added = store.add_signature(w.id, who, sign(w.terms(), key), "human", by=cli_actor())
    except WithdrawalClosed as e:  # cancelled by the user (or moved on) since it was read
        raise fail(str(e), 1) from None
    if not added:
        raise fail(f"{who} has already signed {w.id}", 1)
    typer.echo(json.dumps({"id": w.id, "signer": who, "signatures": len(store.signatures(w.id))}))


def _sign_zero(request_id: str, key_file: str | None) -> None:
    from dpg.chain.forced import ForcedStore, sign_zero

    key = _key(key_file)
    store = ForcedStore(target().url)
    f = store.get(request_id)
    if f is None:
        raise fail(f"no withdrawal or forced withdrawal request {request_id}", 1)
    chain = _store().chain(f.chain)
    try:
        answer, _ = sign_zero(store, request_id, key, chain["signers"] if chain else [])
    except ValueError as e:
        raise fail(str(e), 1) from None
    typer.echo(json.dumps({"request_id": request_id, "answer": "zero", "deadline": answer.deadline,
                           "signer": key.address.lower(), "signatures": len(store.signatures(request_id))}))


@signer_app.command("reject")
def signer_reject(
    wid: Annotated[str, typer.Argument(help="The withdrawal id (0x…)")],
    reason: Annotated[str, typer.Option(help="Why (shown to the user and operators)")],
    key_file: KeyFile = None,
) -> None:
    """Reject a withdrawal: it fails and its funds return to the user (while it has fewer than 3 signatures)."""
    from dpg.store.audit import cli_actor

    _, store, w, who = _as_signer(wid, key_file, "too late to reject")
    store.add_review(w.id, who, "rejected", reason[:200], by=cli_actor())
    typer.echo(json.dumps({"id": w.id, "rejected_by": who}))


@wallet_app.command("deposit")
def wallet_deposit(
    user: Annotated[str, typer.Argument(help="The user's name, email or account number")],
    amount: Annotated[str, typer.Argument(help="Decimal amount, e.g. 1.5")],
    asset: Annotated[str, typer.Option(help="ETH, USDT or BTC (as WBTC)")] = "ETH",
    chain: Annotated[str, typer.Option(help="The custody chain")] = "ethereum",
    sender: Annotated[int, typer.Option(help="The dev chain's funded account that pays (anvil: 0-9)")] = 9,
    plain: Annotated[bool, typer.Option("--plain", help="A plain transfer to the user's deposit address, as "
                                                        "from a wallet or another exchange (no vault call)")] = False,
) -> None:
    """Deposit from a dev chain's funded account for a user: to the vault with the user's tag, or
    (--plain) by a plain transfer to the user's own deposit address; prints the transaction."""
    from dpg.api import operator
    from dpg.chain.config import ASSET_DECIMALS, NATIVE
    from dpg.chain.embedded import deposit_eth, deposit_token, transfer_eth, transfer_token
    from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable, to_int
    from dpg.chain.sweeper import SweepStore
    from dpg.core.errors import DomainError
    from dpg.core.model import parse_amount

    asset = asset.upper()
    if asset not in ASSET_DECIMALS:
        raise fail(f"{asset} cannot be deposited (one of {', '.join(ASSET_DECIMALS)})", 2)
    try:  # checked before anything is asked of the exchange or the chain
        units = parse_amount(amount, ASSET_DECIMALS[asset], "the amount", asset)
    except DomainError as e:
        raise fail(e.reason, 2) from None
    if units <= 0:
        raise fail(f"{amount} is not a positive amount of {asset}", 2)
    exchange = target()
    settings, url = exchange.settings, exchange.url
    if user.isdigit():
        account = int(user)
    else:
        from dpg.identity import AuthError

        try:
            account = operator.user_id(url, settings, user)
        except AuthError as e:
            raise fail(f"{e.code}: {e.reason}", 1) from None
    store = _store()
    c = store.chain(chain)
    if c is None:
        raise fail(f"no custody chain {chain!r} on this exchange (is it running with its chains?)", 1)
    token = NATIVE if c["native_asset"] == asset else next(
        (t["address"] for t in c["tokens"] if t["asset"] == asset), None)
    if token is None:
        raise fail(f"{asset} cannot be deposited on {chain}", 1)
    to = c["vault"]
    if plain:
        addresses = SweepStore(url)
        factory = addresses.factory(chain)
        if factory is None:
            raise fail(f"no deposit addresses on {chain}: it has no forwarder factory "
                       "(DPG_CHAINS' forwarder_factory)", 1)
        to = factory.address_of(account)
        addresses.issue(chain, account, to)  # watched from now on, as when the user asks for it
        addresses.close()
    rpc = Rpc(c["rpc_url"])
    try:
        accounts = rpc.accounts()
        if not 0 <= sender < len(accounts):
            raise fail(f"the node holds no dev account {sender}", 2)
        if plain:
            tx = (transfer_eth(rpc, accounts[sender], to, units) if token == NATIVE
                  else transfer_token(rpc, token, accounts[sender], to, units))
        elif token == NATIVE:
            tx = deposit_eth(rpc, c["vault"], accounts[sender], account, units)
        else:
            tx = deposit_token(rpc, c["vault"], token, accounts[sender], account, units)
        receipt = rpc.wait_receipt(tx, timeout=60)
    except (RpcError, RpcUnavailable, TimeoutError) as e:
        raise fail(f"the chain refused the deposit: {e}", 1) from None
    ok = to_int(receipt["status"]) == 1
    typer.echo(json.dumps({"tx_hash": tx, "status": "mined" if ok else "reverted", "account": account,
                           "asset": asset, "amount": amount, "to": to, "block": to_int(receipt["blockNumber"]),
                           "gas_used": to_int(receipt["gasUsed"]),
                           "credited_after": f"{c['confirmations']} confirmations"
                                             + (" of its sweep into the vault" if plain else "")}))
    if not ok:
        raise typer.Exit(1)


@wallet_app.command("deposits")
def wallet_deposits(
    user: Annotated[str, typer.Argument(help="The user's name, email or account number")],
) -> None:
    """A user's deposits with their confirmations (JSON lines, newest first)."""
    from dpg.api import operator
    from dpg.chain.store import DepositStore

    exchange = target()
    settings, url = exchange.settings, exchange.url
    account = int(user) if user.isdigit() else operator.user_id(url, settings, user)
    store = DepositStore(url)
    for d in store.deposits(account=account):
        typer.echo(json.dumps({"chain": d.chain, "tx_hash": d.tx_hash, "asset": d.asset,
                               "amount": _amount(d.asset, d.amount), "status": d.status,
                               "confirmations": f"{min(d.confirmations, d.required)}/{d.required}",
                               "reason": d.reason}))


@wallet_app.command("sign-exit")
def wallet_sign_exit(
    account: Annotated[int, typer.Option("--account", help="The account number the exit address is for")],
    key: Annotated[str | None, typer.Option("--key", help="The exit address's key: 0x + 64 hex, or a file holding it")]
    = None,
    dev: Annotated[int | None, typer.Option("--dev", help="Sign with the dev chain's test account N (anvil: 0-9) "
                                                          "instead of --key")] = None,
    nonce: Annotated[int | None, typer.Option(help="The registration's nonce; default: the account's next")] = None,
    chain_id: Annotated[int | None, typer.Option(help="The home chain's id; default: the registry's chain")] = None,
    vault: Annotated[str | None, typer.Option(help="The home Vault; default: the registry's chain's vault")] = None,
) -> None:
    """Sign an exit-address registration with the exit address's own key and print it (JSON): the
    body of POST /api/v1/exit-address with the signature. What is not given is read from the exchange."""
    from dpg.chain.exit_address import ExitAddress, sign
    from dpg.chain.signer import dev_key, load_key

    if (key is None) == (dev is None):
        raise fail("name the exit address's key: --key KEY_OR_FILE or --dev N", 2)
    try:
        signer = dev_key(dev) if dev is not None else load_key(str(key), "--key")
    except ValueError as e:
        raise fail(str(e), 2) from None
    if chain_id is None or vault is None or nonce is None:
        import psycopg

        with psycopg.connect(target().url) as conn:
            row = conn.execute("SELECT r.chain_id, c.vault FROM por_registry r JOIN chains c ON c.name = r.chain"
                               ).fetchone()
            count = conn.execute("SELECT count(*) FROM exit_addresses WHERE account = %s", (account,)).fetchone()
        if row is None and (chain_id is None or vault is None):
            raise fail("the exchange has no proof-of-reserves registry yet: name --chain-id and --vault", 1)
        chain_id = int(row[0]) if chain_id is None and row is not None else chain_id
        vault = str(row[1]) if vault is None and row is not None else vault
        nonce = int(count[0]) if nonce is None and count is not None else nonce
    assert chain_id is not None and vault is not None and nonce is not None
    try:
        reg = ExitAddress(account, signer.address.lower(), nonce, chain_id, vault.lower())
    except ValueError as e:
        raise fail(str(e), 2) from None
    typer.echo(json.dumps({"account": account, "address": reg.address, "nonce": nonce, "chainId": str(chain_id),
                           "vault": reg.vault, "signature": sign(reg, signer)}))
