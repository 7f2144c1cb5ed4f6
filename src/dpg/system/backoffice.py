"""The back office beside the engine: the proof-of-reserves epoch schedule, the perpetuals' index
and funding schedule, custody (deposit watchers, withdrawal broadcasters) and the proof publisher.
Built and started whole in its constructor, in the single-process and engine-only modes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dpg.config import Settings
from dpg.por.schedule import Scheduler
from dpg.system.node import Node
from dpg.system.perps import PerpScheduler

if TYPE_CHECKING:
    from dpg.chain.custody import Custody
    from dpg.por.publisher import AutoPublisher

log = logging.getLogger("dpg.server")


def start_custody(settings: Settings, node: Node) -> Custody | None:
    """The chains' deposit watchers and withdrawal broadcasters (``DPG_CUSTODY=0``: none)."""
    if not settings.custody:
        return None
    from dpg.chain.config import load_chains
    from dpg.chain.custody import Custody

    return Custody.start(node.url, node.sequencer.submit_wait, load_chains(), settings.data_dir,
                         replace_after=settings.withdrawal_replace_after)


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


class BackOffice:
    """The schedule starts first (an epoch boundary passing while the chains start is still marked);
    the publisher, once running, is told of every epoch marked."""

    def __init__(self, settings: Settings, node: Node) -> None:
        self.publisher: AutoPublisher | None = None
        self.schedule = Scheduler(node.sequencer.submit_wait, settings.por_interval, on_marked=self._epoch_marked)
        self.schedule.start()
        self.perps = PerpScheduler(node.sequencer, node.mids, settings.index_every_ms)
        self.perps.start()
        self.custody = start_custody(settings, node)
        self.publisher = start_publisher(settings, node.url, self.custody)

    def _epoch_marked(self, epoch: int) -> None:
        if self.publisher is not None:
            self.publisher.epoch_marked(epoch)

    def chains(self) -> str:
        """The custody chains for the start-up line."""
        if self.custody is None:
            return "none"
        return ", ".join(f"{c.name} (RPC {c.rpc_url}, vault {c.vault})" for c in self.custody.chains())

    def stop(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        if self.custody is not None:
            self.custody.stop()
        self.schedule.stop()
        self.perps.stop()
