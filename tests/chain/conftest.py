"""Fixtures for the custody tests: a real anvil node per test (npm's binary under contracts/node_modules),
the committed Vault and DevToken artifacts deployed on it, and an exchange Node on a fresh PostgreSQL.

The node mines a block per transaction and more only on ``mine``, so confirmations are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dpg.chain.anvil import Anvil, find_anvil
from dpg.chain.config import ChainConfig, Token
from dpg.chain.contracts import ARTIFACTS, encode_deploy, load_artifact
from dpg.chain.embedded import deploy, deposit_eth, deposit_token
from dpg.chain.rpc import Rpc, to_int
from dpg.chain.store import DepositStore
from dpg.chain.watcher import DepositWatcher
from dpg.config import Settings
from dpg.core.commands import OpenAccount
from dpg.system.node import Node

CHAIN_ID = 31337
DEPTH = 3


@pytest.fixture(scope="session")
def anvil_bin() -> Path:
    binary = find_anvil()
    if binary is None:
        pytest.skip("no anvil binary: run contracts/build.sh (it installs npm's @foundry-rs/anvil under "
                    "contracts/node_modules) or set DPG_ANVIL")
    return binary


@pytest.fixture(scope="session")
def artifacts() -> Path:
    if not (ARTIFACTS / "Vault.json").exists():
        pytest.skip("src/dpg/chain/artifacts/Vault.json is missing: contracts/build.sh has not exported the contracts")
    return ARTIFACTS


@dataclass
class DevChain:
    """A running anvil with the Vault, its ForwarderFactory, a USDT (6) and a WBTC (8) DevToken, and
    helpers to drive it."""

    binary: Path
    anvil: Anvil
    state: Path | None
    rpc: Rpc = field(init=False)
    accounts: list[str] = field(init=False)
    vault: str = ""
    usdt: str = ""
    wbtc: str = ""
    factory: str = ""

    def __post_init__(self) -> None:
        self.rpc = Rpc(self.anvil.url)
        self.accounts = self.rpc.accounts()

    def config(self, **changes: Any) -> ChainConfig:
        base: dict[str, Any] = {
            "name": "ethereum", "chain_id": CHAIN_ID, "rpc_url": self.anvil.url, "vault": self.vault,
            "confirmations": DEPTH, "native_asset": "ETH",
            "tokens": (Token("USDT", "USDT", self.usdt, 6), Token("WBTC", "BTC", self.wbtc, 8)),
            "poll_seconds": 0.05, "forwarder_factory": self.factory,
        }
        base.update(changes)
        return ChainConfig(**base)

    def head(self) -> int:
        return self.rpc.block_number()

    def mine(self, blocks: int = 1) -> None:
        self.rpc.mine(blocks)

    def deposit_eth(self, account: int, amount: int, sender: int = 9) -> str:
        """A block with the deposit, mined before this returns; the deposit's hash."""
        return self.mined(deposit_eth(self.rpc, self.vault, self.accounts[sender], account, amount))

    def deposit_token(self, token: str, account: int, amount: int, sender: int = 9) -> str:
        """Mint, approve and deposit: three transactions, three blocks; returns the deposit's hash."""
        return self.mined(deposit_token(self.rpc, self.vault, token, self.accounts[sender], account, amount))

    def mined(self, tx_hash: str) -> str:
        """Wait for the transaction's block (anvil mines asynchronously after eth_sendTransaction)."""
        self.rpc.wait_receipt(tx_hash, timeout=10)
        return tx_hash

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        return self.rpc.receipt(tx_hash)

    def block_of(self, tx_hash: str) -> int:
        r = self.rpc.receipt(tx_hash)
        assert r is not None and to_int(r["status"]) == 1, r
        return to_int(r["blockNumber"])

    def raw(self, tx_hash: str) -> str:
        return str(self.rpc.call("eth_getRawTransactionByHash", [tx_hash]))

    def reorg(self, depth: int, txs: list[tuple[str, int]] | None = None) -> None:
        """Replace the last ``depth`` blocks (anvil_reorg); ``txs``: raw transactions to include in the
        new blocks, at block offsets from the first replaced one."""
        self.rpc.call("anvil_reorg", [depth, [[raw, offset] for raw, offset in (txs or [])]])

    def deploy_token(self, symbol: str, decimals: int) -> str:
        tx = self.rpc.send_transaction({"from": self.accounts[0], "gas": hex(5_000_000),
                                        "data": encode_deploy(load_artifact("DevToken"), symbol, symbol, decimals)})
        r = self.rpc.wait_receipt(tx)
        return str(r["contractAddress"]).lower()

    def stop(self) -> None:
        self.anvil.stop()

    def restart(self) -> None:
        """Start the node again on the same port (from its state file, if it keeps one)."""
        self.anvil.stop()
        self.anvil = Anvil.start(self.binary, port=self.anvil.port, chain_id=CHAIN_ID, state=self.state,
                                 state_interval=1)


def _start(binary: Path, state: Path | None) -> DevChain:
    node = Anvil.start(binary, chain_id=CHAIN_ID, state=state, state_interval=1)
    dev = DevChain(binary, node, state)
    try:
        d = deploy(dev.rpc, dev.accounts[0], dev.accounts[1:6], [("USDT", 6), ("WBTC", 8)])
    except BaseException:
        node.stop()
        raise
    dev.vault, dev.usdt, dev.wbtc, dev.factory = d.vault, d.tokens["USDT"], d.tokens["WBTC"], d.forwarder_factory
    return dev


@pytest.fixture
def dev_chain(anvil_bin: Path, artifacts: Path) -> Iterator[DevChain]:
    dev = _start(anvil_bin, None)
    try:
        yield dev
    finally:
        dev.stop()


@pytest.fixture
def dev_chain_with_state(anvil_bin: Path, artifacts: Path, tmp_path: Path) -> Iterator[DevChain]:
    """A dev chain that keeps its state in a file, so that it can be stopped and started again."""
    dev = _start(anvil_bin, tmp_path / "anvil-state.json")
    try:
        yield dev
    finally:
        dev.stop()


DEPOSITORS = range(1, 13)  # the accounts the tests deposit to, opened as sign-up opens them


def open_accounts(node: Node, accounts: Iterable[int] = DEPOSITORS) -> None:
    for account in accounts:
        node.sequencer.submit(OpenAccount(account))
    node.sequencer.submit_wait(OpenAccount(1))  # a fence: every account above is open


@pytest.fixture
def node(pg_url: str) -> Iterator[Node]:
    """An exchange on the test database, its DEPOSITORS open."""
    n = Node.open(pg_url, Settings.from_env({}), projections=False)
    open_accounts(n)
    try:
        yield n
    finally:
        n.close()


WatcherFactory = Callable[..., DepositWatcher]


@pytest.fixture
def make_watcher(pg_url: str) -> Iterator[WatcherFactory]:
    """``make_watcher(config, submit, **options)``: a watcher on the test database; stopped at the end."""
    made: list[DepositWatcher] = []

    def make(config: ChainConfig, submit: Any, **options: Any) -> DepositWatcher:
        options.setdefault("backoff_initial", 0.05)
        options.setdefault("backoff_max", 0.2)
        w = DepositWatcher(config, Rpc(config.rpc_url, timeout=2.0), DepositStore(pg_url), submit, **options)
        made.append(w)
        return w

    try:
        yield make
    finally:
        for w in made:
            w.stop()
