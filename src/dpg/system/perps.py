"""The perpetuals' clockwork outside the engine, in the node process: their index prices and their
funding.

The engine reads no clock and no feed (dpg.core.futures): an index price arrives as a journaled
IndexPrice command and funding as a Funding command. Without an oracle, the exchange's
own index source is the spot market's mid price: ``SpotMids`` keeps the best bid and ask of every
market as committed (read from the engine's books after each batch on the engine thread, standing
once the journal has committed that batch; read under a lock from any thread), and
``PerpScheduler`` every ``DPG_INDEX_EVERY_MS`` (default 1,000 ms) submits IndexPrice(perp, mid of
BASE/QUOTE) for each perpetual whose spot market has both a best bid and a best ask, and
Funding(perp) once the sequencer's time has reached the perpetual's next funding time (the engine
refuses an early one with FUNDING_NOT_DUE: harmless). Each funding is logged.

With an ``oracle`` (dpg.chain.oracle.OracleIndex: Chainlink feeds configured for some perpetuals),
the index of each tick is its answer: the median of the valid feeds and the spot mid, or an
IndexStale when a perpetual with feeds has no valid source.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from dpg.core import events as E
from dpg.core.commands import Funding, IndexPrice, IndexStale
from dpg.core.engine import Engine
from dpg.core.events import Event
from dpg.journal.journal import Applied

if TYPE_CHECKING:
    from dpg.chain.oracle import OracleIndex
    from dpg.journal.sequencer import Callback, Sequencer

log = logging.getLogger("dpg.perps")

NS_PER_MS = 1_000_000  # the sequencer stamps commands in ns; funding times are in ms


class SpotMids:
    """The best bid and ask of every market as committed. The engine thread reads them from the
    books after each batch (``observe``, a sequencer observer: a few reads a batch, nothing per
    command); they stand once the journal has committed that batch (the sink, ``__call__``).
    ``best`` and ``mid`` are thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self._lock = threading.Lock()
        self._pending: deque[tuple[Applied, dict[str, tuple[int, int] | None]]] = deque()
        self._best = self._read(engine)  # a recovered engine is as committed
        self._seq = engine.seq

    @staticmethod
    def _read(engine: Engine) -> dict[str, tuple[int, int] | None]:
        out: dict[str, tuple[int, int] | None] = {}
        for m, book in zip(engine.markets, engine.books, strict=False):
            bid, ask = book.bids.best(), book.asks.best()
            out[m.symbol] = None if bid is None or ask is None else (bid.price * m.tick_size,
                                                                      ask.price * m.tick_size)
        return out

    def observe(self, engine: Engine, last: Applied) -> None:
        """(engine thread) The books right after ``last``: pending until it is committed."""
        best = self._read(engine)
        with self._lock:
            pending = self._pending
            while pending and pending[-1][0].seq >= last.seq:
                pending.pop()  # read before a halt, of commands that never committed: their numbers are reused
            pending.append((last, best))

    def __call__(self, batch: Sequence[Applied]) -> None:
        """(journal thread) ``batch`` is committed: the books read after its commands stand."""
        if not batch:
            return
        first, last = batch[0].seq, batch[-1].seq
        with self._lock:
            pending = self._pending
            while pending and pending[0][0].seq <= last:
                a, best = pending.popleft()
                i = a.seq - first
                if 0 <= i < len(batch) and batch[i] is a:  # (else read of a batch that never committed)
                    self._best, self._seq = best, a.seq

    @property
    def seq(self) -> int:
        """The last command whose books are answered."""
        return self._seq

    def best(self, symbol: str) -> tuple[int, int] | None:
        """(best bid, best ask) of a market in quote units per whole base, None unless both sides
        have orders (or the market is unknown)."""
        with self._lock:
            return self._best.get(symbol)

    def mid(self, symbol: str) -> int | None:
        """The mid price (bid + ask) / 2, rounded down, in quote units per whole base."""
        best = self.best(symbol)
        return None if best is None else (best[0] + best[1]) // 2


def index_source(perp_symbol: str, base: str, quote: str) -> str:
    """The spot market whose mid is a perpetual's index: BTC-PERP (margined in USDT) -> BTC/USDT."""
    return f"{base}/{quote}"


class PerpScheduler:
    """A thread submitting the perpetuals' index prices and funding (see the module's text)."""

    def __init__(self, sequencer: Sequencer, mids: SpotMids, every_ms: int = 1_000,
                 oracle: OracleIndex | None = None) -> None:
        if every_ms <= 0:
            raise ValueError("the index interval must be positive")
        self.sequencer = sequencer
        self.engine = sequencer.engine
        self.mids = mids
        self.oracle = oracle
        self.every = every_ms / 1000
        self.ticks = 0  # index prices submitted
        self.fundings = 0  # fundings applied
        self._funding_asked: dict[str, int] = {}  # perp -> the next funding time a Funding was sent for
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dpg-perps-schedule", daemon=True)

    def start(self) -> None:
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
                log.exception("event=perps_tick_failed")

    def _perps(self) -> list[tuple[str, str, int]]:
        """(perpetual, its index source, its next funding time in ms) of every listed perpetual.
        Read from the engine's thread's objects: the perpetuals' dict only grows (a listing), and
        an int attribute is read whole."""
        for _ in range(3):
            try:
                items = list(self.engine.fut.perps.values())
                break
            except RuntimeError:  # a perpetual was listed while the dict was read
                continue
        else:
            return []
        return [(pm.market.symbol, index_source(pm.market.symbol, pm.market.base.symbol, pm.market.quote.symbol),
                 pm.next_funding) for pm in items]

    def tick(self) -> None:
        """One round: an index price for each perpetual with a spot mid, then the funding due."""
        seq = self.sequencer
        oracle = self.oracle
        sequencer_down = oracle.sequencer_refusal(int(oracle.now())) if oracle is not None else None
        for symbol, source, next_funding in self._perps():
            mid = self.mids.mid(source)
            if oracle is not None:
                cmd = oracle.command(symbol, mid, sequencer_down)
                if isinstance(cmd, IndexStale):
                    seq.submit(cmd, self._stale_done(symbol))
                elif cmd is not None:
                    seq.submit(cmd, self._index_done(symbol, cmd.price))
                    self.ticks += 1
            elif mid is not None and mid > 0:
                seq.submit(IndexPrice(symbol, mid), self._index_done(symbol, mid))
                self.ticks += 1
            now_ms = seq.last_ts // NS_PER_MS
            if next_funding and now_ms >= next_funding and self._funding_asked.get(symbol) != next_funding:
                self._funding_asked[symbol] = next_funding
                seq.submit(Funding(symbol), self._funding_done(symbol))

    @staticmethod
    def _index_done(symbol: str, price: int) -> Callback:
        def done(at: int, events: list[Event]) -> None:
            if events and events[0][0] == E.REJECTED:
                refused = cast(E.Rejected, events[0])
                log.warning("event=index_price_refused market=%s price=%d code=%s reason=%r", symbol, price,
                            refused.code, refused.reason)

        return done

    def _stale_done(self, symbol: str) -> Callback:
        def done(at: int, events: list[Event]) -> None:
            if events and events[0][0] == E.REJECTED and self.oracle is not None:
                self.oracle.forget_stale(symbol)  # not applied: sent again at the next tick
            elif events:
                log.warning("event=index_stale_applied market=%s seq=%d", symbol, at)

        return done

    def _funding_done(self, symbol: str) -> Callback:
        def done(at: int, events: list[Event]) -> None:
            if not events:
                return
            if events[0][0] == E.FUNDING_PAID:
                paid = cast(E.FundingPaid, events[0])
                self.fundings += 1
                log.info("event=funding market=%s seq=%d rate=%d mark=%d paid=%d received=%d to_insurance=%d"
                         " next_funding_ms=%d", symbol, at, paid.rate, paid.mark, paid.paid, paid.received,
                         paid.to_insurance, paid.next_funding)
            elif events[0][0] == E.REJECTED:
                refused = cast(E.Rejected, events[0])
                log.info("event=funding_refused market=%s code=%s reason=%r", symbol, refused.code, refused.reason)
                if refused.code != "FUNDING_NOT_DUE":
                    self._funding_asked.pop(symbol, None)  # try again at the next tick

        return done
