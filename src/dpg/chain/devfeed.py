"""The dev price feeder of the embedded chain: a thread writing the rounds of the DevAggregators that
``dpg up`` deploys there (``dpg.chain.embedded``), so that the perpetuals' Chainlink index
(``dpg.chain.oracle``) reads a live feed in development, as it would read Chainlink's on a real chain.

Like a Chainlink feed, a round is written when the price has moved by ``deviation_ppm`` or when
half the feed's heartbeat has passed since the last one. The price a feed follows is ``follow``'s
(``dpg up --demo``: the spot book's mid of the perpetual's index market) when it has one; else the
feed holds its last price (the aggregator's latest answer, or on a new aggregator its ``seeds``
price), written again with a fresh ``updatedAt`` at every heartbeat. Rounds carry the feeder's
clock (the wall clock the oracle reads with), not the dev chain's block time, which may run ahead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eth_abi.abi import decode

from dpg.chain.contracts import encode_call
from dpg.chain.embedded import FEED_DECIMALS, FEEDER, EmbeddedChain, set_round
from dpg.chain.rpc import Rpc, to_int

log = logging.getLogger("dpg.chain.devfeed")

DEVIATION_PPM = 500  # a move of 0.05 % writes a round before the heartbeat


@dataclass
class _Feed:
    market: str
    address: str
    heartbeat_s: int
    round_id: int = 0  # the aggregator's latest round
    answer: int = 0  # its answer (FEED_DECIMALS); 0: none yet
    written_at: float = 0.0  # the feeder's clock at the last round written


def to_answer(price: int, quote_decimals: int) -> int:
    """A price in quote base units per whole base as a feed answer (FEED_DECIMALS), rounded down."""
    return int(price * 10**FEED_DECIMALS // 10**quote_decimals)


class DevFeeder:
    """Writes the rounds of an embedded chain's DevAggregators (see the module's text). ``start``
    writes the first rounds and waits until they are mined, so that the index finds them."""

    def __init__(self, chain: EmbeddedChain, quote_decimals: int, seeds: Mapping[str, int],
                 follow: Callable[[str], int | None] | None = None, every_s: float = 1.0,
                 deviation_ppm: int = DEVIATION_PPM, now: Callable[[], float] = time.time) -> None:
        self.chain = chain
        self.rpc = Rpc(chain.config.rpc_url)  # its own: the thread's calls are not the demo's
        self.owner = chain.accounts[FEEDER]
        self.quote_decimals = quote_decimals
        self.seeds = dict(seeds)  # perpetual -> price (quote base units per whole base) of a new aggregator
        self.follow = follow
        self.every = every_s
        self.deviation_ppm = deviation_ppm
        self.now = now
        heartbeats = {f.market: f.heartbeat_s for f in chain.config.feeds}
        self.feeds = [_Feed(m, a, heartbeats[m]) for m, a in chain.dev_feeds.items()]
        self.rounds = 0  # rounds written
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dpg-devfeed-{chain.config.name}", daemon=True)

    def start(self) -> None:
        for f in self.feeds:
            rid, answer, _, _, _ = decode(["uint80", "int256", "uint256", "uint256", "uint80"],
                                          self.rpc.eth_call(f.address, encode_call("latestRoundData()")))
            f.round_id, f.answer = int(rid), max(0, int(answer))
        self.tick()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.tick()
            except Exception:
                log.exception("event=devfeed_tick_failed chain=%s", self.chain.config.name)

    def _target(self, f: _Feed) -> int:
        """The answer ``f`` should have now (0: none known)."""
        price = self.follow(f.market) if self.follow is not None else None
        if price is not None and price > 0:
            return to_answer(price, self.quote_decimals)
        if f.answer:
            return f.answer  # hold the last price
        seed = self.seeds.get(f.market, 0)
        return to_answer(seed, self.quote_decimals) if seed > 0 else 0

    def tick(self) -> list[str]:
        """Write the rounds due now (moved or at half the heartbeat), in one block, and wait for it
        to be mined (a round read after a tick is there); their hashes."""
        now = self.now()
        due: list[tuple[_Feed, int]] = []
        for f in self.feeds:
            answer = self._target(f)
            if answer <= 0:
                continue
            moved = f.answer <= 0 or abs(answer - f.answer) * 1_000_000 >= self.deviation_ppm * f.answer
            if moved or now - f.written_at >= f.heartbeat_s / 2:
                due.append((f, answer))
        if not due:
            return []
        at = int(now)
        txs = []
        with self.chain.one_block():
            for f, answer in due:
                txs.append(set_round(self.rpc, self.owner, f.address, f.round_id + 1, answer, at, at))
                f.round_id, f.answer, f.written_at = f.round_id + 1, answer, now
        for tx in txs:
            if to_int(self.rpc.wait_receipt(tx, timeout=30)["status"]) != 1:
                log.error("event=devfeed_round_failed chain=%s tx=%s", self.chain.config.name, tx)
        self.rounds += len(due)
        log.debug("event=devfeed_rounds chain=%s rounds=%s", self.chain.config.name,
                  ",".join(f"{f.market}:{f.round_id}:{a}" for f, a in due))
        return txs
