"""The embedded chain's dev price feeder against a real chain (anvil): it seeds a new DevAggregator,
writes a round when the followed price moves by the deviation or at half the heartbeat, holds the
last price when there is nothing to follow (also after a restart), and the oracle reads its rounds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dpg.chain.anvil import Anvil
from dpg.chain.config import ChainConfig, FeedConfig
from dpg.chain.devfeed import DevFeeder
from dpg.chain.embedded import FEED_DECIMALS, FEEDER, EmbeddedChain, deploy_aggregator
from dpg.chain.oracle import Feed, OracleIndex
from dpg.chain.rpc import Rpc
from dpg.core.commands import IndexPrice

NOW = 1_900_000_000
HEARTBEAT = 60
USDT = 10**6
USD = 10**FEED_DECIMALS


@pytest.fixture
def chain(anvil_bin: Path, artifacts: Path) -> Iterator[EmbeddedChain]:
    node = Anvil.start(anvil_bin, chain_id=31337)
    try:
        rpc = Rpc(node.url, timeout=5.0)
        accounts = rpc.accounts()
        feed = deploy_aggregator(rpc, accounts[FEEDER], FEED_DECIMALS, "BTC-PERP index (dev)")
        config = ChainConfig("ethereum", 31337, node.url, "0x" + "11" * 20, 1, "ETH",
                             feeds=(FeedConfig("BTC-PERP", feed, HEARTBEAT),))
        yield EmbeddedChain(config, node, rpc, accounts, {"BTC-PERP": feed})
    finally:
        node.stop()


def latest(chain: EmbeddedChain) -> tuple[int, int, int]:
    """(round id, answer, updatedAt) of the BTC-PERP DevAggregator."""
    from eth_abi.abi import decode

    from dpg.chain.contracts import encode_call

    raw = chain.rpc.eth_call(chain.dev_feeds["BTC-PERP"], encode_call("latestRoundData()"))
    rid, answer, _, updated, _ = decode(["uint80", "int256", "uint256", "uint256", "uint80"], raw)
    return int(rid), int(answer), int(updated)


def test_the_dev_feeder_seeds_follows_on_a_move_and_holds_at_the_heartbeat(chain: EmbeddedChain) -> None:
    clock = [float(NOW)]
    mid: list[int | None] = [None]
    # its thread waits an hour between ticks: the test ticks it by hand
    feeder = DevFeeder(chain, 6, {"BTC-PERP": 50_000 * USDT}, lambda market: mid[0], every_s=3600,
                       now=lambda: clock[0])
    feeder.start()
    try:
        assert latest(chain) == (1, 50_000 * USD, NOW)  # a new aggregator: the seed, now
        assert feeder.tick() == []  # nothing moved, the heartbeat is far
        mid[0] = 50_020 * USDT  # 0.04 %: below the deviation
        clock[0] += 10
        assert feeder.tick() == [] and latest(chain)[0] == 1
        mid[0] = 50_030 * USDT  # 0.06 %: a round
        assert len(feeder.tick()) == 1 and latest(chain) == (2, 50_030 * USD, NOW + 10)
        mid[0] = None  # no spot mid: the last price held, written again at half the heartbeat
        clock[0] += HEARTBEAT / 2 - 1
        assert feeder.tick() == []
        clock[0] += 1
        assert len(feeder.tick()) == 1 and latest(chain) == (3, 50_030 * USD, NOW + 10 + HEARTBEAT // 2)
        o = OracleIndex(chain.rpc, [Feed("BTC-PERP", chain.dev_feeds["BTC-PERP"], HEARTBEAT)], 6,
                        now=lambda: int(clock[0]))
        o.start()
        assert o.command("BTC-PERP", None) == IndexPrice("BTC-PERP", 50_030 * USDT)
    finally:
        feeder.stop()
    # a restart without a price to follow: the aggregator's last answer is held, not the seed
    clock[0] += 5
    again = DevFeeder(chain, 6, {"BTC-PERP": 50_000 * USDT}, every_s=3600, now=lambda: clock[0])
    again.start()
    again.stop()
    assert latest(chain) == (4, 50_030 * USD, int(clock[0]))
