"""The embedded development chain: a node per chain with DPG's contracts deployed at start.

A chain configured without an ``rpc_url`` is started here: by default an EVM in this process
(``dpg.chain.inprocess``: py-evm, served over JSON-RPC on 127.0.0.1, state in
``<data dir>/chain/<name>/state.msgpack``); with ``DPG_DEV_CHAIN=anvil``, an anvil node from npm
(state in ``state.json``). Either mines a block every ``block_seconds`` and keeps its state
between runs. On first start the Vault (signers: anvil's dev accounts 1-5, guardian and
deployer: account 0, time-lock one hour, escape hatch: forced-withdrawal grace 7 days, registry
silence 72 hours), its ``ForwarderFactory`` (the deposit addresses) and a
``DevToken`` for every token without an address (the symbol and decimals of the configuration:
USDT 6, WBTC 8, WETH 18), and a ``DevAggregator`` (8 decimals, owned by dev account
``FEEDER``) for every price feed without an address: ``dpg.chain.devfeed`` writes its rounds.
On the chain configured with ``governance``, the governance contracts (``dpg.chain.governance``,
rewards in its USDT, DPG for the demo holders) are deployed too, and the Vault names their timelock
its governance (its limits, guardian and escape periods then change only by a passed proposal).
The addresses are kept in ``deployment.json`` beside the state.
anvil's dev accounts come from its well-known test mnemonic: never send anything of value to them.

``deposit_eth`` and ``deposit_token`` make deposits from a dev account, for the demo and tests;
``transfer_eth`` and ``transfer_token`` send plainly, as to an account's deposit address.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dpg.chain.anvil import Anvil, find_anvil
from dpg.chain.config import ChainConfig
from dpg.chain.contracts import encode_call, encode_deploy, load_artifact
from dpg.chain.governance import HOLDER, STAKER, Governance, deploy_governance, govern_vault
from dpg.chain.rpc import Rpc, to_int

log = logging.getLogger("dpg.chain.embedded")

TIMELOCK_SECONDS = 3600
FORCED_GRACE_SECONDS = 7 * 86400  # the Vault's escape hatch: time to serve a forced withdrawal
SILENCE_SECONDS = 72 * 3600  # and the registry's silence after which anyone may freeze the Vault
FEEDER = 6  # the dev account that owns the DevAggregators and writes their rounds (not the broadcaster's 0)
FEED_DECIMALS = 8  # as Chainlink's USD feeds
_GAS_DEPLOY = 8_000_000
_GAS_CALL = 300_000


@dataclass(frozen=True, slots=True)
class Deployment:
    vault: str
    tokens: dict[str, str]  # symbol -> address
    forwarder_factory: str = ""
    feeds: dict[str, str] = dataclasses.field(default_factory=dict)  # perpetual -> its DevAggregator
    governance: Governance | None = None


def _contract_address(rpc: Rpc, tx_hash: str) -> str:
    receipt = rpc.wait_receipt(tx_hash)
    if to_int(receipt["status"]) != 1 or not receipt.get("contractAddress"):
        raise RuntimeError(f"deployment {tx_hash} failed: {receipt}")
    return str(receipt["contractAddress"]).lower()


def deploy_forwarder_factory(rpc: Rpc, deployer: str, vault: str) -> str:
    """Deploy the ForwarderFactory of ``vault`` (with its forwarder implementation); its address."""
    tx = rpc.send_transaction({"from": deployer, "gas": hex(_GAS_DEPLOY),
                               "data": encode_deploy(load_artifact("ForwarderFactory"), vault)})
    rpc.mine()
    return _contract_address(rpc, tx)


def deploy(rpc: Rpc, deployer: str, signers: list[str], tokens: list[tuple[str, int]]) -> Deployment:
    """Deploy the Vault and a DevToken per (symbol, decimals), then the vault's ForwarderFactory;
    returns their addresses. The vault and tokens are sent together and mined at once (on a node
    with interval mining as well)."""
    vault_art = load_artifact("Vault")
    token_art = load_artifact("DevToken")
    vault_tx = rpc.send_transaction({
        "from": deployer, "gas": hex(_GAS_DEPLOY),
        "data": encode_deploy(vault_art, signers, deployer, TIMELOCK_SECONDS, FORCED_GRACE_SECONDS,
                              SILENCE_SECONDS, []),
    })
    token_txs = {
        symbol: rpc.send_transaction({
            "from": deployer, "gas": hex(_GAS_DEPLOY),
            "data": encode_deploy(token_art, f"Dev {symbol}", symbol, decimals),
        })
        for symbol, decimals in tokens
    }
    rpc.mine()
    vault = _contract_address(rpc, vault_tx)
    return Deployment(
        vault=vault,
        tokens={symbol: _contract_address(rpc, tx) for symbol, tx in token_txs.items()},
        forwarder_factory=deploy_forwarder_factory(rpc, deployer, vault),
    )


def deploy_aggregator(rpc: Rpc, deployer: str, decimals: int, description: str, min_answer: int = 1,
                      max_answer: int = 2**191 - 1) -> str:
    """Deploy a DevAggregator (a Chainlink-interface feed whose rounds ``deployer`` sets); its address."""
    tx = rpc.send_transaction({"from": deployer, "gas": hex(_GAS_DEPLOY),
                               "data": encode_deploy(load_artifact("DevAggregator"), decimals, description, min_answer,
                                                     max_answer)})
    rpc.mine()
    return _contract_address(rpc, tx)


def set_round(rpc: Rpc, owner: str, feed: str, round_id: int, answer: int, started_at: int, updated_at: int) -> str:
    """A DevAggregator's latest round, every field chosen; the transaction's hash."""
    return rpc.send_transaction({"from": owner, "to": feed, "gas": hex(_GAS_CALL),
                                 "data": encode_call("setRound(uint80,int256,uint256,uint256)", round_id, answer,
                                                     started_at, updated_at)})


def deposit_eth(rpc: Rpc, vault: str, sender: str, account: int, amount: int) -> str:
    """``depositETH(account)`` with ``amount`` wei from ``sender``; returns the transaction hash."""
    return rpc.send_transaction({
        "from": sender, "to": vault, "value": hex(amount), "gas": hex(_GAS_CALL),
        "data": encode_call("depositETH(uint64)", account),
    })


def deposit_token(rpc: Rpc, vault: str, token: str, sender: str, account: int, amount: int, *,
                  mint: bool = True) -> str:
    """Mint ``amount`` of a DevToken to ``sender`` (if ``mint``), approve the vault and deposit it
    for ``account``; returns the deposit's transaction hash. Explicit gas limits, so the three may
    land in one block."""
    if mint:
        rpc.send_transaction({"from": sender, "to": token, "gas": hex(_GAS_CALL),
                              "data": encode_call("mint(address,uint256)", sender, amount)})
    rpc.send_transaction({"from": sender, "to": token, "gas": hex(_GAS_CALL),
                          "data": encode_call("approve(address,uint256)", vault, amount)})
    return rpc.send_transaction({
        "from": sender, "to": vault, "gas": hex(_GAS_CALL),
        "data": encode_call("depositToken(address,uint256,uint64)", token, amount, account),
    })


def transfer_eth(rpc: Rpc, sender: str, to: str, amount: int) -> str:
    """A plain transfer of ``amount`` wei, no calldata (what a wallet or an exchange sends)."""
    return rpc.send_transaction({"from": sender, "to": to, "value": hex(amount), "gas": hex(_GAS_CALL)})


def transfer_token(rpc: Rpc, token: str, sender: str, to: str, amount: int, *, mint: bool = True) -> str:
    """Mint ``amount`` of a DevToken to ``sender`` (if ``mint``) and ``transfer`` it to ``to``."""
    if mint:
        rpc.send_transaction({"from": sender, "to": token, "gas": hex(_GAS_CALL),
                              "data": encode_call("mint(address,uint256)", sender, amount)})
    return rpc.send_transaction({"from": sender, "to": token, "gas": hex(_GAS_CALL),
                                 "data": encode_call("transfer(address,uint256)", to, amount)})


class DevNode(Protocol):
    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


@dataclass
class EmbeddedChain:
    config: ChainConfig  # resolved: rpc_url, vault and token addresses filled in
    node: DevNode  # an InProcessChain or an Anvil
    rpc: Rpc
    accounts: list[str]  # the unlocked dev accounts (the dev mnemonic's)
    dev_feeds: dict[str, str] = dataclasses.field(default_factory=dict)  # perpetual -> its DevAggregator (FEEDER's)
    governance: Governance | None = None  # on the chain configured with governance

    def deposit_eth(self, account: int, amount: int, sender: int = 9) -> str:
        return deposit_eth(self.rpc, self.config.vault, self.accounts[sender], account, amount)

    def deposit_token(self, symbol: str, account: int, amount: int, sender: int = 9) -> str:
        token = next(t for t in self.config.tokens if t.symbol == symbol)
        return deposit_token(self.rpc, self.config.vault, token.address, self.accounts[sender], account, amount)

    def one_block(self) -> contextlib.AbstractContextManager[None]:
        return one_block(self.node)

    def stop(self) -> None:
        self.node.stop()


def one_block(node: DevNode) -> contextlib.AbstractContextManager[None]:
    """Transactions sent inside land in one block: the in-process chain otherwise mines one
    block per transaction, each a second after the last, running its clock ahead of the wall
    clock (and a proof-of-reserves epoch counts only blocks older than itself); anvil mines
    its interval blocks anyway."""
    from dpg.chain.inprocess import InProcessChain

    return node.one_block() if isinstance(node, InProcessChain) else contextlib.nullcontext()


def _record(path: Path, d: Deployment) -> None:
    doc: dict[str, Any] = {"vault": d.vault, "tokens": d.tokens, "forwarder_factory": d.forwarder_factory,
                           "feeds": d.feeds}
    if d.governance is not None:
        doc["governance"] = d.governance.as_dict()
    path.write_text(json.dumps(doc, indent=2) + "\n")


def _has_code(rpc: Rpc, address: str) -> bool:
    return bool(address) and len(rpc.code(address)) > 0


def start_embedded(config: ChainConfig, data_dir: Path, binary: Path | None = None,
                   kind: str | None = None) -> EmbeddedChain:
    """Start the node of an embedded chain (``kind``: "in-process", the default, or "anvil"; else
    ``DPG_DEV_CHAIN``), deploy the contracts if they are not there yet, and return the chain with
    its configuration resolved."""
    if not config.embedded:
        raise ValueError(f"chain {config.name} has an rpc_url: it is not embedded")
    kind = kind or os.environ.get("DPG_DEV_CHAIN", "") or ("anvil" if binary else "in-process")
    home = data_dir / "chain" / config.name
    home.mkdir(parents=True, exist_ok=True)
    node: DevNode
    if kind == "anvil":
        binary = binary or find_anvil()
        if binary is None:
            raise RuntimeError(
                f"chain {config.name}: no anvil binary for the embedded chain (run contracts/build.sh, set "
                "DPG_ANVIL, or configure the chain's rpc_url in the file named by DPG_CHAINS)"
            )
        node = Anvil.start(binary, chain_id=config.chain_id, block_seconds=config.block_seconds,
                           state=home / "state.json", log_path=home / "anvil.log")
    elif kind == "in-process":
        from dpg.chain.inprocess import InProcessChain

        node = InProcessChain(config.chain_id, config.block_seconds, home / "state.msgpack").start()
    else:
        raise RuntimeError(f"DPG_DEV_CHAIN={kind!r}: in-process or anvil")
    try:
        rpc = Rpc(node.url)
        accounts = rpc.accounts()
        wanted = [(t.symbol, t.decimals) for t in config.tokens if not t.address]
        record = home / "deployment.json"
        deployment: Deployment | None = None
        if record.exists():
            doc: dict[str, Any] = json.loads(record.read_text())
            d = Deployment(doc["vault"], dict(doc["tokens"]), doc.get("forwarder_factory", ""),
                           dict(doc.get("feeds", {})),
                           Governance.from_dict(doc["governance"]) if "governance" in doc else None)
            if _has_code(rpc, d.vault) and all(_has_code(rpc, d.tokens.get(s, "")) for s, _ in wanted):
                deployment = d
            if deployment is not None and not _has_code(rpc, deployment.forwarder_factory):
                # a chain from before deposit addresses: its vault gets its factory now
                deployment = dataclasses.replace(
                    deployment, forwarder_factory=deploy_forwarder_factory(rpc, accounts[0], deployment.vault))
                _record(record, deployment)
        if deployment is None:
            deployment = deploy(rpc, accounts[0], accounts[1:6], wanted)
            _record(record, deployment)
            log.info("event=contracts_deployed chain=%s vault=%s forwarder_factory=%s tokens=%s", config.name,
                     deployment.vault, deployment.forwarder_factory,
                     ",".join(f"{s}:{a}" for s, a in deployment.tokens.items()))
        have = deployment.feeds
        missing = [f.market for f in config.feeds if not f.address and not _has_code(rpc, have.get(f.market, ""))]
        if missing:  # a new chain, or one from before the feeds
            deployment = dataclasses.replace(deployment, feeds={**deployment.feeds, **{
                market: deploy_aggregator(rpc, accounts[FEEDER], FEED_DECIMALS, f"{market} index (dev)")
                for market in missing}})
            _record(record, deployment)
            log.info("event=feeds_deployed chain=%s feeds=%s", config.name,
                     ",".join(f"{m}:{deployment.feeds[m]}" for m in missing))
        tokens = tuple(
            t if t.address else dataclasses.replace(t, address=deployment.tokens[t.symbol]) for t in config.tokens
        )
        gov = deployment.governance
        if config.governance and (gov is None or not all(_has_code(rpc, a) for a in gov.addresses())):
            usdt = next(t.address for t in tokens if t.asset == "USDT")
            gov = deploy_governance(rpc, accounts[0], usdt, staker=accounts[STAKER], holder=accounts[HOLDER],
                                    batch=lambda: one_block(node))
            deployment = dataclasses.replace(deployment, governance=gov)
            _record(record, deployment)
            log.info("event=governance_deployed chain=%s token=%s staking=%s governor=%s timelock=%s params=%s",
                     config.name, gov.token, gov.staking, gov.governor, gov.timelock, gov.params)
        if config.governance and gov is not None and govern_vault(rpc, accounts[0], deployment.vault, gov.timelock):
            log.info("event=vault_governed chain=%s vault=%s timelock=%s", config.name, deployment.vault,
                     gov.timelock)
        feeds = tuple(f if f.address else dataclasses.replace(f, address=deployment.feeds[f.market])
                      for f in config.feeds)
        resolved = dataclasses.replace(config, rpc_url=node.url, vault=config.vault or deployment.vault, tokens=tokens,
                                       forwarder_factory=config.forwarder_factory or deployment.forwarder_factory,
                                       feeds=feeds)
    except BaseException:
        node.stop()
        raise
    log.info("event=embedded_chain_up chain=%s kind=%s url=%s chain_id=%d vault=%s", config.name, kind, node.url,
             config.chain_id, resolved.vault)
    dev_feeds = {f.market: f.address for f, asked in zip(resolved.feeds, config.feeds, strict=True)
                 if not asked.address}
    return EmbeddedChain(resolved, node, rpc, accounts, dev_feeds, gov if config.governance else None)

