"""``dpg gov …`` (propose, vote on, queue and execute changes of the exchange's parameters through
DPG's governor) and ``dpg stake …`` (stake DPG, withdraw it, claim the USDT reward, delegate votes).

The contracts are those the exchange records for its governed chain (``DPG_DATA_DIR`` or
``DPG_DATABASE_URL`` names the exchange); ``--rpc`` names the chain's node (default: the one the
exchange uses). Transactions are signed locally with ``--key`` (a file holding 0x + 64 hex, or
``DPG_GOV_KEY``); the key never leaves the machine. Each command prints one JSON line; a refused or
reverted transaction exits 1, bad input 2.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from dpg.cli.context import fail, target

gov_app = typer.Typer(help="Governance: propose, vote, queue and execute changes of the exchange's parameters",
                      no_args_is_help=True)
stake_app = typer.Typer(help="Staking: stake DPG for votes and a share of the fees, unstake, claim, delegate",
                        no_args_is_help=True)

RpcOpt = Annotated[str | None, typer.Option("--rpc", help="The chain's JSON-RPC URL (default: the exchange's)")]
KeyOpt = Annotated[str | None, typer.Option("--key", help="File holding the account's key (0x + 64 hex); "
                                                          "default: DPG_GOV_KEY")]
_GAS_MARGIN = 1.3
PPM = 1_000_000
BPS = 10_000


class Chain:
    """The governed chain as the exchange records it, reached at ``rpc_url``, and a signing key."""

    def __init__(self, rpc_url: str | None, key_file: str | None, need_key: bool = True) -> None:
        from dpg.chain.govwatch import GovStore
        from dpg.chain.rpc import Rpc

        store = GovStore(target().url)
        try:
            recorded = store.contracts()
        finally:
            store.close()
        if recorded is None:
            raise fail("this exchange records no governance contracts: start it with its chains (dpg up) on a "
                       "chain that has them", 1)
        self.name, self.chain_id, url, self.gov = recorded
        self.rpc = Rpc(rpc_url or url)
        self.key: Any = None
        if need_key:
            from dpg.chain.signer import load_key

            source = key_file or os.environ.get("DPG_GOV_KEY", "")
            if not source:
                raise fail("name the account's key: --key FILE or DPG_GOV_KEY", 2)
            try:
                self.key = load_key(source, "--key" if key_file else "DPG_GOV_KEY")
            except ValueError as e:
                raise fail(str(e), 2) from None

    @property
    def address(self) -> str:
        return str(self.key.address).lower()

    def send(self, to: str, data: str, what: str) -> dict[str, Any]:
        """Sign and send a call, wait for its receipt; exit 1 when the chain refuses or reverts it."""
        from dpg.chain.broadcaster import fees, send_raw, sign_tx
        from dpg.chain.rpc import RpcError, RpcUnavailable, to_int

        try:
            gas = to_int(self.rpc.call("eth_estimateGas", [{"from": self.address, "to": to, "data": data}]))
            nonce = to_int(self.rpc.call("eth_getTransactionCount", [self.address, "pending"]))
            tip, max_fee = fees(self.rpc)
            raw, tx = sign_tx(self.key, self.chain_id, to, data, nonce, int(gas * _GAS_MARGIN), tip, max_fee)
            send_raw(self.rpc, raw)
            receipt = self.rpc.wait_receipt(tx, timeout=60)
        except RpcError as e:
            raise fail(f"{what}: the chain refused it: {e.message}{' ' + e.data if e.data else ''}", 1) from None
        except (RpcUnavailable, TimeoutError, OSError) as e:
            raise fail(f"{what}: no answer from the chain at {self.rpc.url}: {e}", 1) from None
        if to_int(receipt["status"]) != 1:
            raise fail(f"{what}: transaction {tx} reverted", 1)
        return {"tx_hash": tx, "block": to_int(receipt["blockNumber"])}

    def vault(self) -> tuple[str, str, list[dict[str, Any]]]:
        """(vault, native asset, tokens) of the governed chain, as custody recorded it."""
        from dpg.chain.govwatch import GovStore

        store = GovStore(target().url)
        try:
            recorded = store.vault_of(self.name)
        finally:
            store.close()
        if recorded is None:
            raise fail(f"this exchange records no vault for the chain {self.name}: start it with its chains (dpg up)",
                       1)
        return recorded

    def vault_token(self, symbol: str) -> tuple[str, str, int]:
        """(vault, token address, decimals) of the governed chain's token ``symbol`` (its native coin:
        the zero address, 18 decimals)."""
        vault, native, tokens = self.vault()
        wanted = symbol.strip().upper()
        if wanted == native.upper():
            return vault, "0x" + "00" * 20, 18
        for t in tokens:
            if wanted in (str(t["symbol"]).upper(), str(t["asset"]).upper()):
                return vault, str(t["address"]).lower(), int(t["decimals"])
        known = ", ".join([native] + [str(t["symbol"]) for t in tokens])
        raise fail(f"--vault-limit: the chain {self.name} has no token {symbol!r} (it has {known})", 2)

    def now(self) -> int:
        from dpg.chain.rpc import to_int

        return to_int(self.rpc.block(self.rpc.block_number())["timestamp"])  # type: ignore[index]

    def proposal(self, pid: str) -> Any:
        from dpg.chain.governance import proposals

        found = next((p for p in proposals(self.rpc, self.gov.governor) if str(p.id) == pid.strip()), None)
        if found is None:
            raise fail(f"no proposal {pid} on the governor {self.gov.governor}", 1)
        return found


def _ppm(text: str, what: str) -> int:
    """A rate ("0.0005") in ppm, exactly."""
    try:
        value = Decimal(text) * PPM
    except InvalidOperation:
        raise fail(f"{what}: {text!r} is not a number", 2) from None
    if value != value.to_integral_value() or not 0 <= value < PPM:
        raise fail(f"{what}: a rate within [0, 1) in steps of 0.000001, not {text!r}", 2)
    return int(value)


def _units(text: str, per: int, what: str, zero: bool = False) -> int:
    """A decimal amount in base units, exactly; positive (or, with ``zero``, also 0)."""
    try:
        value = Decimal(text) * per
    except InvalidOperation:
        raise fail(f"{what}: {text!r} is not a number", 2) from None
    if not value.is_finite() or value != value.to_integral_value() or value < 0 or (value == 0 and not zero):
        raise fail(f"{what}: a {'non-negative' if zero else 'positive'} amount in steps of one base unit, "
                   f"not {text!r}", 2)
    return int(value)


def _address(text: str, what: str) -> str:
    from eth_utils.address import is_hex_address

    if not is_hex_address(text) or int(text, 16) == 0:
        raise fail(f"{what}: an address (0x + 40 hex, not zero), not {text!r}", 2)
    return text.lower()


def _market(text: str, what: str) -> bytes:
    from dpg.chain.govwatch import symbol_bytes

    if text.count("/") != 1 or not all(text.split("/")):
        raise fail(f"{what}: a market is BASE/QUOTE, e.g. BTC/USDT, not {text!r}", 2)
    return symbol_bytes(text.upper())


def _echo(doc: dict[str, Any]) -> None:
    typer.echo(json.dumps(doc))


# ---------------------------------------------------------------------- dpg gov


@gov_app.command("propose")
def propose(
    description: Annotated[str, typer.Argument(help="What the proposal does and why")],
    fees: Annotated[str | None, typer.Option("--fees", help="Set this market's fees (with --maker/--taker)")] = None,
    maker: Annotated[str | None, typer.Option("--maker", help="Maker fee rate, e.g. 0.0008")] = None,
    taker: Annotated[str | None, typer.Option("--taker", help="Taker fee rate, e.g. 0.0005")] = None,
    halt: Annotated[str | None, typer.Option("--halt", help="Halt this market")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Resume this market")] = None,
    staker_share: Annotated[str | None, typer.Option("--staker-share", help="The stakers' share, e.g. 0.3")] = None,
    listing: Annotated[str | None, typer.Option("--list", help="List the market BASE/QUOTE (with --tick-size, "
                                                               "--lot-size, --min-notional, --maker, --taker)")] = None,
    tick_size: Annotated[int, typer.Option("--tick-size", help="Quote base units per whole base unit")] = 0,
    lot_size: Annotated[int, typer.Option("--lot-size", help="Base units")] = 0,
    min_notional: Annotated[int, typer.Option("--min-notional", help="Quote base units")] = 0,
    vault_limit: Annotated[str | None, typer.Option("--vault-limit", help="Set the vault's limits of this token "
                                                                         "(with --threshold and --daily)")] = None,
    threshold: Annotated[str | None, typer.Option("--threshold", help="Time-lock threshold in whole tokens, e.g. "
                                                                     "100000 (0: no time-lock)")] = None,
    daily: Annotated[str | None, typer.Option("--daily", help="Daily limit in whole tokens (0: unlimited)")] = None,
    guardian: Annotated[str | None, typer.Option("--guardian", help="Make this address the vault's guardian")] = None,
    rpc: RpcOpt = None,
    key: KeyOpt = None,
) -> None:
    """Propose changes of the exchange's parameters (each option one call of ExchangeParams) and of
    the governed chain's vault (--vault-limit, --guardian)."""
    from dpg.chain.contracts import encode_call
    from dpg.chain.governance import VAULT_CONFIGURE, VAULT_GUARDIAN

    if not description.strip():
        raise fail("a proposal needs a description", 2)
    calls: list[str] = []
    if fees is not None:
        if maker is None or taker is None:
            raise fail("--fees needs --maker and --taker", 2)
        calls.append(encode_call("setFees(bytes32,uint32,uint32)", _market(fees, "--fees"), _ppm(maker, "--maker"),
                                 _ppm(taker, "--taker")))
    if halt is not None:
        calls.append(encode_call("haltMarket(bytes32)", _market(halt, "--halt")))
    if resume is not None:
        calls.append(encode_call("resumeMarket(bytes32)", _market(resume, "--resume")))
    if staker_share is not None:
        share = _ppm(staker_share, "--staker-share") if staker_share.strip() != "1" else PPM
        if share % (PPM // BPS):
            raise fail("--staker-share: in steps of 0.0001 (basis points)", 2)
        calls.append(encode_call("setStakerShare(uint32)", share // (PPM // BPS)))
    if listing is not None:
        base, _, quote = listing.upper().partition("/")
        if maker is None or taker is None or tick_size <= 0 or lot_size <= 0 or min_notional < 0:
            raise fail("--list needs --tick-size, --lot-size (positive), --min-notional, --maker and --taker", 2)
        from dpg.chain.govwatch import symbol_bytes

        calls.append(encode_call("listMarket(bytes32,bytes32,bytes32,uint128,uint128,uint128,uint32,uint32)",
                                 _market(listing, "--list"), symbol_bytes(base), symbol_bytes(quote), tick_size,
                                 lot_size, min_notional, _ppm(maker, "--maker"), _ppm(taker, "--taker")))
    if vault_limit is not None and (threshold is None or daily is None):
        raise fail("--vault-limit needs --threshold and --daily", 2)
    new_guardian = _address(guardian, "--guardian") if guardian is not None else None
    if not calls and vault_limit is None and new_guardian is None:
        raise fail("say what to change: --fees, --halt, --resume, --staker-share, --list, --vault-limit or "
                   "--guardian", 2)
    chain = Chain(rpc, key)
    targets = [chain.gov.params] * len(calls)
    if vault_limit is not None and threshold is not None and daily is not None:
        from dpg.chain.governance import read

        vault, token, decimals = chain.vault_token(vault_limit)
        refuse = read(chain.rpc, vault, "refuseFeeTokens(address)", "bool", token)  # kept as it is
        calls.append(encode_call(VAULT_CONFIGURE, (token, _units(threshold, 10**decimals, "--threshold", zero=True),
                                                   _units(daily, 10**decimals, "--daily", zero=True), refuse)))
        targets.append(vault)
    if new_guardian is not None:
        calls.append(encode_call(VAULT_GUARDIAN, new_guardian))
        targets.append(chain.vault()[0])
    data = encode_call("propose(address[],uint256[],bytes[],string)", targets, [0] * len(calls),
                       [bytes.fromhex(c[2:]) for c in calls], description)
    sent = chain.send(chain.gov.governor, data, "propose")
    from eth_utils.crypto import keccak

    from dpg.chain.governance import read

    pid = read(chain.rpc, chain.gov.governor, "hashProposal(address[],uint256[],bytes[],bytes32)", "uint256",
               targets, [0] * len(calls), [bytes.fromhex(c[2:]) for c in calls],
               keccak(text=description))
    _echo({"proposal_id": str(pid), **sent})


@gov_app.command("vote")
def vote(
    proposal: Annotated[str, typer.Argument(help="The proposal id (decimal)")],
    support: Annotated[str, typer.Option("--support", help="for, against or abstain")] = "for",
    rpc: RpcOpt = None,
    key: KeyOpt = None,
) -> None:
    """Vote on an active proposal with the key's votes (DPG delegated to it and its staked DPG)."""
    from dpg.chain.contracts import encode_call

    choices = {"against": 0, "for": 1, "abstain": 2}
    if support.lower() not in choices:
        raise fail(f"--support is for, against or abstain, not {support!r}", 2)
    chain = Chain(rpc, key)
    p = chain.proposal(proposal)
    state = _state(chain, p.id)
    if state != "Active":
        raise fail(f"proposal {proposal} is {state}: votes are taken while it is Active "
                   f"(from {p.vote_start} to {p.vote_end}, unix s)", 1)
    sent = chain.send(chain.gov.governor, encode_call("castVote(uint256,uint8)", p.id, choices[support.lower()]),
                      "vote")
    _echo({"proposal_id": str(p.id), "support": support.lower(), "voter": chain.address, **sent})


def _state(chain: Chain, pid: int) -> str:
    from dpg.chain.governance import STATES, read

    return STATES[read(chain.rpc, chain.gov.governor, "state(uint256)", "uint8", pid)]


def _lifecycle(proposal: str, rpc: str | None, key: str | None, step: str, needed: str) -> None:
    from dpg.chain.contracts import encode_call

    chain = Chain(rpc, key)
    p = chain.proposal(proposal)
    state = _state(chain, p.id)
    if state != needed:
        raise fail(f"proposal {proposal} is {state}: it can be {step}d once {needed}", 1)
    data = encode_call(f"{step}(address[],uint256[],bytes[],bytes32)", p.targets, p.values, p.calldatas,
                       p.description_hash())
    sent = chain.send(chain.gov.governor, data, step)
    _echo({"proposal_id": str(p.id), "state": _state(chain, p.id), **sent})


@gov_app.command("queue")
def queue(proposal: Annotated[str, typer.Argument(help="The proposal id")], rpc: RpcOpt = None,
          key: KeyOpt = None) -> None:
    """Queue a succeeded proposal in the timelock (it may be executed after the delay)."""
    _lifecycle(proposal, rpc, key, "queue", "Succeeded")


@gov_app.command("execute")
def execute(proposal: Annotated[str, typer.Argument(help="The proposal id")], rpc: RpcOpt = None,
            key: KeyOpt = None) -> None:
    """Execute a queued proposal once the timelock's delay has passed."""
    _lifecycle(proposal, rpc, key, "execute", "Queued")


@gov_app.command("list")
def gov_list(rpc: RpcOpt = None) -> None:
    """Every proposal, newest first (JSON lines: state, votes, quorum, ETA, actions)."""
    from dpg.chain.governance import proposal_view, proposals

    chain = Chain(rpc, None, need_key=False)
    now = chain.now()
    for p in reversed(proposals(chain.rpc, chain.gov.governor)):
        _echo(proposal_view(chain.rpc, chain.gov, p, now))


# ---------------------------------------------------------------------- dpg stake


@stake_app.command("stake")
def stake(amount: Annotated[str, typer.Argument(help="DPG to stake, e.g. 1000")], rpc: RpcOpt = None,
          key: KeyOpt = None) -> None:
    """Approve and stake DPG (its votes count through the stake; it earns the stakers' share)."""
    from dpg.chain.contracts import encode_call
    from dpg.chain.governance import DPG

    units = _units(amount, DPG, "amount")
    chain = Chain(rpc, key)
    chain.send(chain.gov.token, encode_call("approve(address,uint256)", chain.gov.staking, units), "approve")
    _echo({"staked": amount, **chain.send(chain.gov.staking, encode_call("stake(uint256)", units), "stake")})


@stake_app.command("unstake")
def unstake(amount: Annotated[str, typer.Argument(help="DPG to withdraw")], rpc: RpcOpt = None,
            key: KeyOpt = None) -> None:
    """Withdraw staked DPG."""
    from dpg.chain.contracts import encode_call
    from dpg.chain.governance import DPG

    units = _units(amount, DPG, "amount")
    chain = Chain(rpc, key)
    _echo({"unstaked": amount, **chain.send(chain.gov.staking, encode_call("withdraw(uint256)", units), "unstake")})


@stake_app.command("claim")
def claim(rpc: RpcOpt = None, key: KeyOpt = None) -> None:
    """Claim the USDT earned by the stake."""
    from dpg.chain.contracts import encode_call

    chain = Chain(rpc, key)
    _echo({"claimed_by": chain.address, **chain.send(chain.gov.staking, encode_call("getReward()"), "claim")})


@stake_app.command("delegate")
def delegate(to: Annotated[str | None, typer.Argument(help="The address to delegate DPG votes to "
                                                           "(default: the key's own)")] = None,
             rpc: RpcOpt = None, key: KeyOpt = None) -> None:
    """Delegate the key's DPG votes (held DPG votes only once delegated, to oneself or another)."""
    from dpg.chain.contracts import encode_call

    chain = Chain(rpc, key)
    who = (to or chain.address).lower()
    if not (who.startswith("0x") and len(who) == 42 and all(c in "0123456789abcdef" for c in who[2:])):
        raise fail(f"not an address: {to!r}", 2)
    _echo({"delegate": who, **chain.send(chain.gov.token, encode_call("delegate(address)", who), "delegate")})


@stake_app.command("status")
def status(address: Annotated[str | None, typer.Option("--address", help="Whose (default: the key's)")] = None,
           rpc: RpcOpt = None, key: KeyOpt = None) -> None:
    """An account's DPG, stake, unclaimed reward, votes and delegate."""
    from dpg.chain.governance import account_view

    chain = Chain(rpc, key, need_key=address is None)
    who = (address or chain.address).lower()
    _echo(account_view(chain.rpc, chain.gov, who))
