"""The back office beside the engine: the proof-of-reserves epoch schedule, the perpetuals' index
and funding schedule, custody (deposit watchers, withdrawal broadcasters), the proof publisher and
the backups (daily archives, journal shipping) and the trade surveillance (``dpg.surveillance.schedule``,
reading the projections).
Built and started whole in its constructor, in the single-process and engine-only modes.

The index reads the Chainlink feeds of the chain settings (``dpg.chain.oracle``): on the embedded
chain, the DevAggregators deployed at start, whose rounds a dev feeder writes (``dpg.chain.devfeed``:
following the spot mid with ``--demo``, else holding the last price); on a chain reached by URL,
the configured feeds, read even without custody (``DPG_CUSTODY=0``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dpg.backup.schedule import BackupSchedule
from dpg.config import Settings
from dpg.por.schedule import Scheduler
from dpg.surveillance.schedule import Surveillance
from dpg.system.node import Node
from dpg.system.perps import PerpScheduler

if TYPE_CHECKING:
    from dpg.chain.custody import Custody
    from dpg.chain.devfeed import DevFeeder
    from dpg.chain.oracle import OracleIndex
    from dpg.por.publisher import AutoPublisher

log = logging.getLogger("dpg.server")


def start_custody(settings: Settings, node: Node) -> Custody | None:
    """The chains' deposit watchers and withdrawal broadcasters (``DPG_CUSTODY=0``: none)."""
    if not settings.custody:
        return None
    from dpg.chain.config import load_chains
    from dpg.chain.custody import Custody, StakersSchedule
    from dpg.chain.rewards import ASSET
    from dpg.core.model import STAKERS_ACCOUNT

    stakers = StakersSchedule(node.clock.now, lambda: node.engine.balance(STAKERS_ACCOUNT, ASSET)[0],
                              settings.staker_period, settings.withdrawal_ttl)
    return Custody.start(node.url, node.sequencer.submit_wait, load_chains(), settings.data_dir,
                         replace_after=settings.withdrawal_replace_after, stakers=stakers)


def start_publisher(settings: Settings, url: str, custody: Custody | None) -> AutoPublisher | None:
    """The proof of reserves published every epoch on the custody chains (``DPG_POR_PUBLISH=0``, or
    no custody: none). Starts a thread; never waits on a chain."""
    if custody is None or not settings.por_publish:
        return None
    chains = custody.chains()
    if not chains:
        log.warning("event=por_publish_off reason=%r", "no custody chain is running")
        return None
    from dpg.por import ipfs
    from dpg.por.publisher import AutoPublisher

    publisher = AutoPublisher(url, chains, set(custody.embedded), settings.data_dir, settings.por_key(),
                              ipfs.Store.from_env(settings.data_dir), registry=settings.por_registry,
                              public_rpc=settings.por_rpc)
    publisher.start()
    return publisher


def start_oracle(node: Node, custody: Custody | None, demo: bool) -> tuple[OracleIndex | None, list[DevFeeder]]:
    """The index's Chainlink feeds (none: the spot mid alone, as before) and the dev feeders of the
    embedded chain's DevAggregators, started."""
    from dpg.chain.config import load_chains

    chains = custody.chains() if custody is not None else [c for c in load_chains() if not c.embedded]
    chain = next((c for c in chains if c.feeds), None)
    if chain is None:
        return None, []
    from dpg.api.demo import REFERENCE
    from dpg.chain.devfeed import DevFeeder
    from dpg.chain.oracle import Feed, OracleIndex
    from dpg.chain.rpc import Rpc
    from dpg.system.perps import index_source

    perps = {pm.market.symbol: pm.market for pm in node.engine.fut.perps.values()}
    feeds = []
    for f in chain.feeds:
        if f.market in perps:
            feeds.append(Feed(f.market, f.address, f.heartbeat_s, f.margin_s))
        else:
            log.warning("event=oracle_feed_ignored chain=%s market=%s feed=%s reason=%r", chain.name, f.market,
                        f.address, "no such perpetual")
    quotes = {perps[f.market].quote.decimals for f in feeds}
    if len(quotes) != 1:
        log.warning("event=oracle_off chain=%s reason=%r", chain.name,
                    "no feed of a listed perpetual" if not quotes else "the perpetuals' quotes differ in decimals")
        return None, []
    (quote_decimals,) = quotes
    feeders: list[DevFeeder] = []
    dev = custody.embedded.get(chain.name) if custody is not None else None
    if dev is not None and dev.dev_feeds:
        sources = {s: index_source(s, m.base.symbol, m.quote.symbol) for s, m in perps.items()}
        seeds = {s: REFERENCE[m.base.symbol] * 10**quote_decimals for s, m in perps.items()
                 if m.base.symbol in REFERENCE}

        def follow(market: str) -> int | None:
            return node.mids.mid(sources[market])

        feeder = DevFeeder(dev, quote_decimals, seeds, follow if demo else None)
        try:
            feeder.start()
            feeders.append(feeder)
        except Exception:
            log.exception("event=devfeed_not_started chain=%s", chain.name)
    oracle = OracleIndex(Rpc(chain.rpc_url), feeds, quote_decimals, sequencer_uptime=chain.sequencer_uptime)
    oracle.start()
    log.info("event=oracle_started chain=%s feeds=%s sequencer_uptime=%s dev_feeder=%s", chain.name,
             ",".join(f"{f.market}:{f.address}" for f in feeds), chain.sequencer_uptime or "-",
             "follows the spot mid" if feeders and demo else "holds the last price" if feeders else "-")
    return oracle, feeders


class BackOffice:
    """The schedule starts first (an epoch boundary passing while the chains start is still marked);
    the index once the chains are up (its feeds may be on them); the publisher, once running, is
    told of every epoch marked."""

    def __init__(self, settings: Settings, node: Node, demo: bool = False) -> None:
        self.publisher: AutoPublisher | None = None
        self.schedule = Scheduler(node.sequencer.submit_wait, settings.por_interval, on_marked=self._epoch_marked)
        self.schedule.start()
        self.custody = start_custody(settings, node)
        self.oracle, self.feeders = start_oracle(node, self.custody, demo)
        self.perps = PerpScheduler(node.sequencer, node.mids, settings.index_every_ms, oracle=self.oracle)
        self.perps.start()
        self.publisher = start_publisher(settings, node.url, self.custody)
        self.backups = BackupSchedule(settings, node.url)
        self.backups.start()
        self.surveillance = Surveillance.start(node.url, settings.surveillance)

    def _epoch_marked(self, epoch: int) -> None:
        if self.publisher is not None:
            self.publisher.epoch_marked(epoch)

    def chains(self) -> str:
        """The custody chains for the start-up line."""
        if self.custody is None:
            return "none"
        return ", ".join(f"{c.name} (RPC {c.rpc_url}, vault {c.vault})" for c in self.custody.chains())

    def stop(self) -> None:
        """The index and its feeders before the chains: a feed read from a stopped dev chain would
        be refused, and the index marked stale, for nothing."""
        self.backups.stop()
        if self.surveillance is not None:
            self.surveillance.stop()
        if self.publisher is not None:
            self.publisher.stop()
        self.perps.stop()
        for feeder in self.feeders:
            feeder.stop()
        if self.custody is not None:
            self.custody.stop()
        self.schedule.stop()
