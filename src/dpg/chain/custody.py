"""Custody for a running exchange: every configured chain's deposit watcher, withdrawal
broadcaster (dpg.chain.broadcaster), the server of its forced withdrawals (dpg.chain.forced), on the
chain with DPG's governance contracts its governance watcher (dpg.chain.govwatch) and the stakers'
fee payouts (dpg.chain.rewards, dev account 0 as the rewards distributor, when ``stakers`` is given)
and, on a chain with a forwarder factory, the sweeper of its deposit addresses (dpg.chain.sweeper,
with the broadcaster key), each in its own thread.

A node wires it in after ``Node.open`` and stops it before ``node.close()``::

    custody = Custody.start(node.url, node.sequencer.submit_wait, load_chains(), settings.data_dir)
    ...
    custody.stop()

An embedded chain (no ``rpc_url``) is started first (``dpg.chain.embedded``); one that cannot be
(no anvil binary) is logged and left out, so the exchange still runs. A chain reached by URL is
watched even while its node is down: its watcher retries until the node answers. Each chain, as
resolved, is written to the ``chains`` table (with the vault's signers) for the API's wallet pages.
An embedded chain's three human signer keys (anvil's test accounts 3-5) are written to
``<data dir>/chain/<name>/signers/`` for ``dpg signer sign --key-file``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dpg.chain.broadcaster import Broadcaster, Policy
from dpg.chain.config import ChainConfig
from dpg.chain.embedded import EmbeddedChain, start_embedded
from dpg.chain.forced import ForcedServer, ForcedStore
from dpg.chain.governance import Governance
from dpg.chain.govwatch import GovStore, GovWatcher
from dpg.chain.rewards import StakerRewards
from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable
from dpg.chain.signer import dev_key, load_keys, write_key
from dpg.chain.store import Deposit, DepositStore
from dpg.chain.sweeper import Sweeper, SweepStore
from dpg.chain.watcher import DepositWatcher, Submit
from dpg.chain.withdrawals import WithdrawalStore

log = logging.getLogger("dpg.chain.custody")


@dataclass(frozen=True)
class StakersSchedule:
    """What the stakers' payouts need from the exchange: its clock (ns), the stakers' reserve of
    USDT (engine account STAKERS_ACCOUNT, available), the reward period and a payout's validity."""

    now_ns: Callable[[], int]
    reserve: Callable[[], int]
    period_s: int
    ttl_s: int


@dataclass
class Custody:
    url: str
    watchers: list[DepositWatcher] = field(default_factory=list)
    broadcasters: list[Broadcaster] = field(default_factory=list)
    forced: list[ForcedServer] = field(default_factory=list)
    sweepers: list[Sweeper] = field(default_factory=list)
    governors: list[GovWatcher] = field(default_factory=list)
    rewards: list[StakerRewards] = field(default_factory=list)
    embedded: dict[str, EmbeddedChain] = field(default_factory=dict)

    @staticmethod
    def start(url: str, submit: Submit, chains: Sequence[ChainConfig], data_dir: Path, *,
              anvil: Path | None = None, env: Mapping[str, str] | None = None, policy: Policy | None = None,
              replace_after: float = 30.0, poll: float = 1.0, stakers: StakersSchedule | None = None) -> Custody:
        """``url``: the exchange's PostgreSQL (migrated); ``submit``: ``node.sequencer.submit_wait``;
        ``env``: where the exchange's keys are named (``dpg.chain.signer.load_keys``)."""
        custody = Custody(url)
        environ = os.environ if env is None else env
        for configured in chains:
            chain, reset = configured, False
            if configured.embedded:
                try:
                    dev = start_embedded(configured, data_dir, anvil)
                except (RuntimeError, OSError) as e:
                    log.error("event=chain_not_started chain=%s error=%r", configured.name, str(e))
                    continue
                custody.embedded[configured.name] = dev
                chain = dev.config
                reset = True  # its state file may be removed: start over rather than halt
            watcher = DepositWatcher(chain, Rpc(chain.rpc_url), DepositStore(url), submit, reset_on_mismatch=reset)
            watcher.start()
            custody.watchers.append(watcher)
            gov = custody.embedded[configured.name].governance if configured.embedded else None
            if gov is not None:
                custody.watch_governance(chain, gov, submit)
            try:
                keys = load_keys(environ, configured.embedded)
            except ValueError as e:
                log.error("event=withdrawals_disabled chain=%s error=%r", chain.name, str(e))
                continue
            store = WithdrawalStore(url)
            broadcaster = Broadcaster(chain, Rpc(chain.rpc_url), store, submit, keys, policy,
                                      replace_after=replace_after)
            try:
                store.save_chain(chain, broadcaster.signers())
            except (RpcError, RpcUnavailable) as e:
                log.error("event=withdrawals_disabled chain=%s error=%r", chain.name, str(e))
                continue
            if configured.embedded:
                for n, index in enumerate((3, 4, 5), start=1):
                    path = data_dir / "chain" / chain.name / "signers" / f"human-{n}.key"
                    if not path.exists():
                        write_key(path, dev_key(index))
            broadcaster.start(poll)
            custody.broadcasters.append(broadcaster)
            server = ForcedServer(chain, Rpc(chain.rpc_url), ForcedStore(url), DepositStore(url), submit, keys)
            server.start(poll)
            custody.forced.append(server)
            if gov is not None and stakers is not None:
                rewards = StakerRewards(chain, Rpc(chain.rpc_url), WithdrawalStore(url), submit, gov.staking,
                                        dev_key(0), now_ns=stakers.now_ns, reserve=stakers.reserve,
                                        period_s=stakers.period_s, ttl_s=stakers.ttl_s)
                rewards.start(poll)
                custody.rewards.append(rewards)
            if chain.forwarder_factory:
                sweeper = Sweeper(chain, Rpc(chain.rpc_url), SweepStore(url), keys.broadcaster)
                sweeper.start()
                custody.sweepers.append(sweeper)
        log.info("event=custody_started chains=%s", ",".join(w.chain.name for w in custody.watchers) or "-")
        return custody

    def watch_governance(self, chain: ChainConfig, gov: Governance, submit: Submit) -> None:
        """Record the chain's governance contracts and apply ExchangeParams' decisions."""
        store = GovStore(self.url)
        try:
            store.save_contracts(chain, gov)
        finally:
            store.close()
        watcher = GovWatcher(chain, gov, Rpc(chain.rpc_url), self.url, submit)
        watcher.start()
        self.governors.append(watcher)

    def chains(self) -> list[ChainConfig]:
        """The watched chains, resolved (an embedded chain with its URL and addresses)."""
        return [w.chain for w in self.watchers]

    def deposits(self, account: int, limit: int = 100) -> list[Deposit]:
        """An account's deposits on every chain, newest first, with their confirmations."""
        store = DepositStore(self.url)
        try:
            return store.deposits(account=account, limit=limit)
        finally:
            store.close()

    def stop(self) -> None:
        for r in self.rewards:
            r.stop()
        self.rewards.clear()
        for g in self.governors:
            g.stop()
        self.governors.clear()
        for s in self.sweepers:
            s.stop()
        self.sweepers.clear()
        for f in self.forced:
            f.stop()
        self.forced.clear()
        for b in self.broadcasters:
            b.stop()
        self.broadcasters.clear()
        for w in self.watchers:
            w.stop()
        for dev in self.embedded.values():
            dev.stop()
        self.watchers.clear()
        self.embedded.clear()
