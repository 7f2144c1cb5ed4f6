"""The perpetuals' oracle against a real chain (anvil): DevAggregator feeds whose rounds the tests set,
read by dpg.chain.oracle; each refusal case; the rounds journaled as IndexPrice commands by the
PerpScheduler of a Node on PostgreSQL; the stale state stopping position-increasing orders and
liquidations, then resuming; the L2 sequencer-uptime grace period (refused at 3,600 s, accepted at 3,601)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dpg.chain.anvil import Anvil
from dpg.chain.contracts import encode_call
from dpg.chain.embedded import deploy_aggregator, set_round
from dpg.chain.oracle import Feed, OracleIndex
from dpg.chain.rpc import Rpc
from dpg.config import Settings
from dpg.core import events as E
from dpg.core.commands import Credit, IndexPrice, IndexStale, OpenAccount, PlaceOrder
from dpg.core.model import OrderType, Side
from dpg.journal.codec import decode
from dpg.journal.journal import Journal
from dpg.system.node import Node
from dpg.system.perps import PerpScheduler

NOW = 1_900_000_000  # the reader's clock in these tests (seconds): rounds are set relative to it
HEARTBEAT = 3_600
MARGIN = 60
USD = 10**8  # the feeds' 8 decimals
USDT = 10**6
MIN_ANSWER, MAX_ANSWER = 1_000 * USD, 1_000_000 * USD


@dataclass
class Chain:
    rpc: Rpc
    owner: str

    def feed(self, decimals: int = 8, lo: int = MIN_ANSWER, hi: int = MAX_ANSWER) -> str:
        return deploy_aggregator(self.rpc, self.owner, decimals, "BTC / USD", lo, hi)

    def send(self, to: str, signature: str, *args: object) -> None:
        tx = self.rpc.send_transaction({"from": self.owner, "to": to, "gas": hex(300_000),
                                        "data": encode_call(signature, *args)})
        assert int(self.rpc.wait_receipt(tx, timeout=10)["status"], 16) == 1

    def round(self, feed: str, round_id: int, answer: int, updated_at: int, started_at: int | None = None) -> None:
        tx = set_round(self.rpc, self.owner, feed, round_id, answer,
                       updated_at if started_at is None else started_at, updated_at)
        assert int(self.rpc.wait_receipt(tx, timeout=10)["status"], 16) == 1


@pytest.fixture(scope="module")
def chain(anvil_bin: Path, artifacts: Path) -> Iterator[Chain]:
    node = Anvil.start(anvil_bin, chain_id=31337)
    try:
        rpc = Rpc(node.url, timeout=5.0)
        yield Chain(rpc, rpc.accounts()[0])
    finally:
        node.stop()


def oracle(chain: Chain, *feeds: Feed, sequencer: str = "", clock: list[int] | None = None) -> OracleIndex:
    t = clock if clock is not None else [NOW]
    o = OracleIndex(chain.rpc, feeds, 6, sequencer_uptime=sequencer, now=lambda: t[0])
    o.start()
    return o


def btc(address: str) -> Feed:
    return Feed("BTC-PERP", address, HEARTBEAT, MARGIN)


# ---------------------------------------------------------------------------- reading and refusing


def test_a_valid_round_is_the_index_in_quote_units(chain: Chain) -> None:
    f = chain.feed()
    chain.round(f, 1, 65_000 * USD + 12_345_678, NOW - 5)
    o = oracle(chain, btc(f))
    assert o.command("BTC-PERP", None) == IndexPrice("BTC-PERP", 65_000 * USDT + 123_456)  # rounded down
    # with the spot mid and a second feed: the median of the three
    g = chain.feed()
    chain.round(g, 7, 66_000 * USD, NOW - 5)
    o = oracle(chain, btc(f), btc(g))
    assert o.command("BTC-PERP", 70_000 * USDT) == IndexPrice("BTC-PERP", 66_000 * USDT)
    assert o.command("BTC-PERP", None) == IndexPrice("BTC-PERP", (65_000 * USDT + 123_456 + 66_000 * USDT) // 2)


REFUSALS: dict[str, tuple[Callable[[Chain, str, list[int]], object], str]] = {
    # case: (what is done to the feed after one valid round at NOW - 100, the reason's words)
    "the call fails": (lambda c, f, clock: c.send(f, "setReverting(bool)", True), "latestRoundData() failed"),
    "decimals changed": (lambda c, f, clock: c.send(f, "setDecimals(uint8)", 18), "decimals() is 18, it was 8"),
    "roundId 0": (lambda c, f, clock: c.round(f, 0, 65_000 * USD, NOW - 10), "roundId is 0"),
    "updatedAt 0": (lambda c, f, clock: c.round(f, 2, 65_000 * USD, 0, NOW - 10), "updatedAt is 0"),
    "updatedAt in the future": (lambda c, f, clock: c.round(f, 2, 65_000 * USD, NOW + 1), "in the future"),
    "older than the last valid": (lambda c, f, clock: c.round(f, 2, 65_000 * USD, NOW - 101),
                                  "older than the last valid"),
    "answer 0": (lambda c, f, clock: c.round(f, 2, 0, NOW - 10), "answer 0 is not positive"),
    "answer negative": (lambda c, f, clock: c.round(f, 2, -1, NOW - 10), "answer -1 is not positive"),
    "at minAnswer": (lambda c, f, clock: c.round(f, 2, MIN_ANSWER, NOW - 10), "at or below the aggregator's minAnswer"),
    "below minAnswer": (lambda c, f, clock: c.round(f, 2, MIN_ANSWER - 1, NOW - 10), "at or below"),
    "at maxAnswer": (lambda c, f, clock: c.round(f, 2, MAX_ANSWER, NOW - 10), "at or above the aggregator's maxAnswer"),
    "above maxAnswer": (lambda c, f, clock: c.round(f, 2, MAX_ANSWER + 1, NOW - 10), "at or above"),
    # no new round for the heartbeat and its margin, and one second more (the reader's clock moves)
    "older than heartbeat + margin": (lambda c, f, clock: clock.__setitem__(0, NOW - 100 + HEARTBEAT + MARGIN + 1),
                                      f"the round is {HEARTBEAT + MARGIN + 1} s old, more than the heartbeat "
                                      f"{HEARTBEAT} s + {MARGIN} s"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refusal_case_makes_the_feed_invalid_with_a_logged_reason(
        chain: Chain, case: str, caplog: pytest.LogCaptureFixture) -> None:
    f = chain.feed()
    chain.round(f, 1, 64_000 * USD, NOW - 100)
    clock = [NOW]
    o = oracle(chain, btc(f), clock=clock)
    assert o.command("BTC-PERP", None) == IndexPrice("BTC-PERP", 64_000 * USDT)  # valid first
    act, words = REFUSALS[case]
    act(chain, f, clock)
    with caplog.at_level(logging.WARNING, logger="dpg.oracle"):
        assert o.command("BTC-PERP", None) == IndexStale("BTC-PERP")
        assert o.command("BTC-PERP", None) is None  # stale already: not sent again
        assert o.command("BTC-PERP", 63_000 * USDT) == IndexPrice("BTC-PERP", 63_000 * USDT)  # the spot mid alone
    refused = [r.getMessage() for r in caplog.records if "event=oracle_round_refused" in r.getMessage()]
    assert refused and words in refused[0], refused
    assert "market=BTC-PERP" in refused[0] and f"feed={f}" in refused[0]


def test_a_round_at_exactly_heartbeat_plus_margin_is_still_valid(chain: Chain) -> None:
    f = chain.feed()
    chain.round(f, 1, 64_000 * USD, NOW - HEARTBEAT - MARGIN)
    assert oracle(chain, btc(f)).command("BTC-PERP", None) == IndexPrice("BTC-PERP", 64_000 * USDT)


# ---------------------------------------------------------------------------- the L2 sequencer


@pytest.mark.parametrize(("up_for", "valid"), [(3_600, False), (3_601, True)])
def test_the_sequencer_grace_period_refuses_at_3600_and_accepts_at_3601(
        chain: Chain, up_for: int, valid: bool, caplog: pytest.LogCaptureFixture) -> None:
    f = chain.feed()
    chain.round(f, 1, 64_000 * USD, NOW - 1)
    seq = chain.feed(decimals=0, lo=0, hi=0)
    chain.round(seq, 1, 0, NOW - 1, started_at=NOW - up_for)  # answer 0: up, since startedAt
    o = oracle(chain, btc(f), sequencer=seq)
    with caplog.at_level(logging.WARNING, logger="dpg.oracle"):
        cmd = o.command("BTC-PERP", None, o.sequencer_refusal(NOW))
    assert cmd == (IndexPrice("BTC-PERP", 64_000 * USDT) if valid else IndexStale("BTC-PERP"))
    logged = [r.getMessage() for r in caplog.records if "event=oracle_sequencer_refused" in r.getMessage()]
    assert bool(logged) is not valid
    if logged:
        assert "up 3600 s, not more than the grace period 3600 s" in logged[0]


def test_a_down_sequencer_invalidates_its_feeds(chain: Chain) -> None:
    f = chain.feed()
    chain.round(f, 1, 64_000 * USD, NOW - 1)
    seq = chain.feed(decimals=0, lo=0, hi=0)
    chain.round(seq, 1, 1, NOW - 1, started_at=NOW - 10_000)  # answer 1: down
    o = oracle(chain, btc(f), sequencer=seq)
    assert o.sequencer_refusal(NOW) == "the sequencer is down"
    assert o.command("BTC-PERP", None, o.sequencer_refusal(NOW)) == IndexStale("BTC-PERP")
    chain.round(seq, 2, 0, NOW - 1, started_at=NOW - 3_601)
    assert o.command("BTC-PERP", None, o.sequencer_refusal(NOW)) == IndexPrice("BTC-PERP", 64_000 * USDT)


# ---------------------------------------------------------------------------- journaled, stale, resumed


def _wait(node: Node, cond: object, what: str) -> None:
    deadline = time.monotonic() + 10
    node.sequencer.submit_wait(OpenAccount(1))  # a fence: every command submitted before is applied
    while not callable(cond) or not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _journal(url: str) -> list[object]:
    """Every command of the journal, read on a connection of its own."""
    j = Journal(url)
    try:
        return [decode(bytes(row[2])) for row in j.read(0)]
    finally:
        j.close()


def test_rounds_are_journaled_and_a_stale_index_stops_orders_and_liquidations_until_it_returns(
        chain: Chain, pg_url: str) -> None:
    fb, fe = chain.feed(), chain.feed()
    chain.round(fb, 1, 50_000 * USD, NOW - 1)
    chain.round(fe, 1, 3_000 * USD, NOW - 1)
    clock = [NOW]
    o = oracle(chain, btc(fb), Feed("ETH-PERP", fe, HEARTBEAT, MARGIN), clock=clock)
    node = Node.open(pg_url, Settings.from_env({}), projections=False)
    try:
        sched = PerpScheduler(node.sequencer, node.mids, oracle=o)  # ticked by hand, not started
        eng = node.engine
        bi, ei = eng.market_by_symbol["BTC-PERP"].index, eng.market_by_symbol["ETH-PERP"].index
        sched.tick()
        _wait(node, lambda: eng.fut.perps[bi].index == 50_000 * USDT and eng.fut.perps[ei].index == 3_000 * USDT,
              "the first rounds applied")
        journaled = [c for c in _journal(pg_url) if isinstance(c, IndexPrice)]
        assert IndexPrice("BTC-PERP", 50_000 * USDT) in journaled and IndexPrice("ETH-PERP", 3_000 * USDT) in journaled

        seq = node.sequencer
        for acct, amount in ((1, 600), (2, 100_000)):
            seq.submit_wait(OpenAccount(acct))
            seq.submit_wait(Credit(acct, "USDT", amount * USDT, f"oracle-test-{acct}"))

        def order(acct: int, market: str, side: Side, price: int, qty: int) -> list[E.Event]:
            return seq.submit_wait(PlaceOrder(acct, market, side, OrderType.LIMIT, price * USDT, qty))[1]

        # account 1: cross longs of 0.1 BTC at 50,000 and 1 ETH at 3,000 on a wallet of 600
        order(1, "BTC-PERP", Side.BUY, 50_000, 10**7)
        assert any(ev[0] == E.TRADE for ev in order(2, "BTC-PERP", Side.SELL, 50_000, 10**7))
        order(1, "ETH-PERP", Side.BUY, 3_000, 10**18)
        assert any(ev[0] == E.TRADE for ev in order(2, "ETH-PERP", Side.SELL, 3_000, 10**18))

        # the BTC feed stops: an hour and a minute later its round is too old, and there is no spot mid
        clock[0] = NOW + HEARTBEAT + MARGIN
        chain.round(fe, 2, 3_000 * USD, clock[0] - 1)
        sched.tick()
        _wait(node, lambda: eng.fut.perps[bi].stale, "BTC-PERP stale")
        assert IndexStale("BTC-PERP") in _journal(pg_url)
        refused = order(2, "BTC-PERP", Side.BUY, 49_000, 10**6)
        assert refused[0][0] == E.REJECTED and refused[0].code == "INDEX_STALE"
        # ETH falls: account 1's cross wallet is under maintenance, but one of its positions has no price
        chain.round(fe, 3, 2_420 * USD, clock[0])
        sched.tick()
        _wait(node, lambda: eng.fut.perps[ei].index == 2_420 * USDT, "the ETH round applied")
        assert eng.fut.positions[(1, bi)].size and eng.fut.positions[(1, ei)].size  # not liquidated

        # the BTC feed answers again: the index returns, the deferred check liquidates, orders are taken
        chain.round(fb, 2, 50_000 * USD, clock[0])
        sched.tick()
        _wait(node, lambda: not eng.fut.perps[bi].stale, "BTC-PERP valid again")
        assert eng.fut.positions[(1, bi)].size == 0 and eng.fut.positions[(1, ei)].size == 0
        assert order(2, "BTC-PERP", Side.BUY, 49_000, 10**6)[0][0] == E.ORDER_NEW
        assert not eng.conservation_errors()
    finally:
        node.close()
