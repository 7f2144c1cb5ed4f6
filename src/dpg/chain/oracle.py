"""The perpetuals' index prices from Chainlink aggregators: each configured feed's latest round read
over JSON-RPC, checked, and with the exchange's own spot mid the median of the valid sources
becomes a journaled IndexPrice; a perpetual with feeds and no valid source gets an IndexStale.

A feed is read with ``decimals()`` and ``latestRoundData()`` (``AggregatorV3Interface``); its
``decimals()`` and, when the aggregator has them, its ``minAnswer()``/``maxAnswer()`` (on the
feed, or on the aggregator a proxy names with ``aggregator()``) are read once at start. A round is
refused, with a structured log line giving the reason, when:

- the call fails (a revert, a node that does not answer, an answer that does not decode);
- ``decimals()`` differs from the value read at start;
- ``roundId`` is 0; ``updatedAt`` is 0, in the future, or older than the last valid round's;
- the answer is <= 0, or at or beyond the aggregator's min/max answer (Chainlink clamps there);
- ``updatedAt`` is older than the feed's heartbeat plus its margin;
- an L2 sequencer-uptime feed is configured and reports the sequencer down (answer 1), or up
  for at most ``grace_s`` seconds (3,600: refused at 3,600, accepted at 3,601) since ``startedAt``.

Time is the reader's clock (``now``, seconds), not the chain's: a quiet chain's last block says
nothing about how old a round is. Prices are quote base units per whole base: the answer scaled
from the feed's decimals to the quote asset's, rounded down (a USD feed prices the USDT quote).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eth_abi.abi import decode

from dpg.chain.contracts import encode_call
from dpg.chain.rpc import Rpc
from dpg.core.commands import IndexPrice, IndexStale

log = logging.getLogger("dpg.oracle")

SEQUENCER_GRACE_S = 3600  # a sequencer back up for at most this long: its feeds are not trusted yet
DEFAULT_MARGIN_S = 60  # a round may be this much older than its feed's heartbeat


@dataclass(frozen=True, slots=True)
class Feed:
    """A Chainlink aggregator (or its proxy) that prices a perpetual's base in its quote."""

    market: str  # the perpetual, e.g. BTC-PERP
    address: str  # lower-case 0x
    heartbeat_s: int  # the feed publishes at least this often
    margin_s: int = DEFAULT_MARGIN_S  # how late a round may be past the heartbeat


@dataclass(frozen=True, slots=True)
class Round:
    round_id: int
    answer: int
    started_at: int
    updated_at: int


class Refused(Exception):
    """A round, or a feed's call, that does not give a price; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _read_round(rpc: Rpc, address: str) -> Round:
    try:
        raw = rpc.eth_call(address, encode_call("latestRoundData()"))
        rid, answer, started, updated, _ = decode(["uint80", "int256", "uint256", "uint256", "uint80"], raw)
    except Exception as err:  # a revert, a node down, an answer that does not decode
        raise Refused(f"latestRoundData() failed: {type(err).__name__}") from None
    return Round(int(rid), int(answer), int(started), int(updated))


def _read_uint(rpc: Rpc, address: str, signature: str, abi: str) -> int:
    try:
        (value,) = decode([abi], rpc.eth_call(address, encode_call(signature)))
    except Exception as err:
        raise Refused(f"{signature} failed: {type(err).__name__}") from None
    return int(value)


def _read_address(rpc: Rpc, address: str, signature: str) -> str:
    (value,) = decode(["address"], rpc.eth_call(address, encode_call(signature)))
    return str(value).lower()


def check_round(r: Round, *, decimals: int, start_decimals: int, bounds: tuple[int, int] | None,
                last_updated: int, now: int, heartbeat_s: int, margin_s: int) -> str | None:
    """Why ``r`` is refused, or None when it is valid (the rules of the module's text)."""
    if decimals != start_decimals:
        return f"decimals() is {decimals}, it was {start_decimals} at start"
    if r.round_id == 0:
        return "roundId is 0"
    if r.updated_at == 0:
        return "updatedAt is 0"
    if r.updated_at > now:
        return f"updatedAt {r.updated_at} is in the future (now {now})"
    if r.updated_at < last_updated:
        return f"updatedAt {r.updated_at} is older than the last valid round's {last_updated}"
    if r.answer <= 0:
        return f"answer {r.answer} is not positive"
    if bounds is not None:
        lo, hi = bounds
        if r.answer <= lo:
            return f"answer {r.answer} is at or below the aggregator's minAnswer {lo}"
        if r.answer >= hi:
            return f"answer {r.answer} is at or above the aggregator's maxAnswer {hi}"
    age = now - r.updated_at
    if age > heartbeat_s + margin_s:
        return f"the round is {age} s old, more than the heartbeat {heartbeat_s} s + {margin_s} s"
    return None


def check_sequencer(r: Round, now: int, grace_s: int = SEQUENCER_GRACE_S) -> str | None:
    """Why an L2 sequencer-uptime round makes the feeds invalid, or None when they may be used."""
    if r.answer != 0:
        return "the sequencer is down" if r.answer == 1 else f"sequencer status {r.answer} is neither 0 nor 1"
    if r.started_at == 0:
        return "the sequencer-uptime round has no startedAt"
    up = now - r.started_at
    if up <= grace_s:
        return f"the sequencer has been up {up} s, not more than the grace period {grace_s} s"
    return None


def scale_price(answer: int, feed_decimals: int, quote_decimals: int) -> int:
    """An answer in the feed's decimals as quote base units (rounded down)."""
    up = max(0, quote_decimals - feed_decimals)
    down = max(0, feed_decimals - quote_decimals)
    return int(answer * 10**up // 10**down)


def median(prices: Sequence[int]) -> int:
    """The median of the valid sources; of an even count, the mean of the middle two, rounded down."""
    s = sorted(prices)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2


@dataclass
class FeedReader:
    """One feed: what was read at start, and its last valid round."""

    feed: Feed
    rpc: Rpc
    start_decimals: int | None = None  # None: not read yet (the first successful call reads it)
    bounds: tuple[int, int] | None = None
    last_round: Round | None = None
    last_refusal: str = ""  # logged once per distinct reason, not at every poll

    def start(self) -> None:
        """Read ``decimals()`` and the min/max answer bounds, if the aggregator has them."""
        self.start_decimals = _read_uint(self.rpc, self.feed.address, "decimals()", "uint8")
        self.bounds = None
        for target in self._bound_targets():
            try:
                lo = _read_uint(self.rpc, target, "minAnswer()", "int192")
                hi = _read_uint(self.rpc, target, "maxAnswer()", "int192")
            except Refused:
                continue
            self.bounds = (lo, hi)
            break

    def _bound_targets(self) -> list[str]:
        try:
            agg = _read_address(self.rpc, self.feed.address, "aggregator()")
        except Exception:
            return [self.feed.address]
        return [agg, self.feed.address] if agg != self.feed.address else [agg]

    def read(self, now: int) -> Round:
        """The latest round, checked; raises Refused with the reason."""
        if self.start_decimals is None:
            self.start()
        assert self.start_decimals is not None
        decimals = _read_uint(self.rpc, self.feed.address, "decimals()", "uint8")
        r = _read_round(self.rpc, self.feed.address)
        reason = check_round(r, decimals=decimals, start_decimals=self.start_decimals, bounds=self.bounds,
                             last_updated=self.last_round.updated_at if self.last_round else 0, now=now,
                             heartbeat_s=self.feed.heartbeat_s, margin_s=self.feed.margin_s)
        if reason is not None:
            raise Refused(reason)
        self.last_round = r
        return r


@dataclass
class OracleIndex:
    """The index of every perpetual with feeds: ``command(market, mid)`` is the IndexPrice (the
    median of its valid sources, the spot ``mid`` among them when there is one) or the IndexStale
    to submit, or None for a perpetual without feeds and without a mid."""

    rpc: Rpc
    feeds: Sequence[Feed]
    quote_decimals: int  # the perpetuals' quote (USDT: 6)
    sequencer_uptime: str = ""  # the L2 sequencer-uptime feed's address; "" = none (an L1)
    grace_s: int = SEQUENCER_GRACE_S
    now: Callable[[], float] = time.time
    readers: dict[str, list[FeedReader]] = field(default_factory=dict, init=False)
    rounds_read: int = field(default=0, init=False)  # valid rounds read (the same round read again counts)
    refusals: int = field(default=0, init=False)
    _sequencer_refusal: str = field(default="", init=False)
    _stale: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        for f in self.feeds:
            self.readers.setdefault(f.market, []).append(FeedReader(f, self.rpc))

    @property
    def markets(self) -> set[str]:
        return set(self.readers)

    def start(self) -> None:
        """Read each feed's decimals and bounds now (a feed that fails is read again at its first poll)."""
        for readers in self.readers.values():
            for r in readers:
                try:
                    r.start()
                except Refused as err:
                    self._refused(r.feed, err.reason, None)

    def sequencer_refusal(self, now: int) -> str | None:
        """Why the sequencer makes every feed invalid now, or None (also when there is none)."""
        if not self.sequencer_uptime:
            return None
        try:
            reason = check_sequencer(_read_round(self.rpc, self.sequencer_uptime), now, self.grace_s)
        except Refused as err:
            reason = err.reason
        if reason is not None and reason != self._sequencer_refusal:
            log.warning("event=oracle_sequencer_refused feed=%s reason=%r", self.sequencer_uptime, reason)
        elif reason is None and self._sequencer_refusal:
            log.info("event=oracle_sequencer_up feed=%s", self.sequencer_uptime)
        self._sequencer_refusal = reason or ""
        return reason

    def prices(self, market: str, now: int, sequencer: str | None) -> list[int]:
        """The valid feed prices of ``market`` now."""
        out: list[int] = []
        for reader in self.readers.get(market, ()):
            try:
                if sequencer is not None:
                    raise Refused(sequencer)
                r = reader.read(now)
            except Refused as err:
                self._refused(reader.feed, err.reason, reader)
                continue
            assert reader.start_decimals is not None
            if reader.last_refusal:
                log.info("event=oracle_feed_valid market=%s feed=%s round=%d", market, reader.feed.address,
                         r.round_id)
                reader.last_refusal = ""
            self.rounds_read += 1
            out.append(scale_price(r.answer, reader.start_decimals, self.quote_decimals))
        return out

    def _refused(self, feed: Feed, reason: str, reader: FeedReader | None) -> None:
        self.refusals += 1
        if reader is None or reader.last_refusal != reason:
            log.warning("event=oracle_round_refused market=%s feed=%s reason=%r", feed.market, feed.address, reason)
        if reader is not None:
            reader.last_refusal = reason

    def command(self, market: str, mid: int | None, sequencer: str | None = None,
                now: int | None = None) -> IndexPrice | IndexStale | None:
        """What to submit for ``market`` this tick (see the class's text). ``sequencer``: the
        reason of ``sequencer_refusal`` read once for the tick."""
        t = int(self.now()) if now is None else now
        sources = self.prices(market, t, sequencer)
        if mid is not None and mid > 0:
            sources.append(mid)
        if sources:
            self._stale.discard(market)
            return IndexPrice(market, median(sources))
        if market not in self.readers:
            return None  # a spot-only index without a mid: the last price holds, as before the oracle
        if market in self._stale:
            return None  # sent already
        self._stale.add(market)
        log.warning("event=index_stale market=%s reason=%r", market, "no valid index source")
        return IndexStale(market)

    def forget_stale(self, market: str) -> None:
        """The IndexStale was not applied (the journal failed): send it again next time."""
        self._stale.discard(market)
