"""The perpetuals' Chainlink feeds in the chain settings: read from TOML or JSON, defaults, and every
wrong entry refused with a message naming the chain, the feed and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dpg.chain.config import (
    DEFAULT_FEED_MARGIN_S,
    DEV_FEED_HEARTBEAT_S,
    ChainConfigError,
    FeedConfig,
    default_chains,
    load_chains,
)
from dpg.core.genesis import PERPS

BTC_USD = "0xF4030086522a5bEEa4988F8cA5B36dbC97BeE88c"
UPTIME = "0xFdB631F5EE196F0ed6FAa767959853A9F217697D"

TOML = f"""
[[chains]]
name = "arbitrum"
chain_id = 42161
rpc_url = "https://arb.invalid/rpc"
vault = "0x00000000000000000000000000000000000000AA"
confirmations = 20
native_asset = "ETH"
sequencer_uptime = "{UPTIME}"

[[chains.feeds]]
market = "BTC-PERP"
address = "{BTC_USD}"
heartbeat_s = 86400
margin_s = 120

[[chains.feeds]]
market = "ETH-PERP"
address = "0x639Fe6ab55C921f74e7fac1ee960C0B6293ba612"
heartbeat_s = 86400
"""


def test_feeds_and_the_sequencer_uptime_feed_load_from_toml(tmp_path: Path) -> None:
    p = tmp_path / "chains.toml"
    p.write_text(TOML)
    (arb,) = load_chains({"DPG_CHAINS": str(p)})
    assert arb.sequencer_uptime == UPTIME.lower()
    assert arb.feeds == (FeedConfig("BTC-PERP", BTC_USD.lower(), 86_400, 120),
                         FeedConfig("ETH-PERP", "0x639fe6ab55c921f74e7fac1ee960c0b6293ba612", 86_400,
                                    DEFAULT_FEED_MARGIN_S))


def test_the_embedded_default_deploys_a_feed_per_perpetual_on_ethereum_only() -> None:
    eth, polygon = default_chains()
    assert [(f.market, f.address, f.heartbeat_s) for f in eth.feeds] == [
        (p.symbol, "", DEV_FEED_HEARTBEAT_S) for p in PERPS]
    assert polygon.feeds == () and eth.sequencer_uptime == polygon.sequencer_uptime == ""


def _entry(**change: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "ethereum", "chain_id": 1, "rpc_url": "http://127.0.0.1:8545",
                             "vault": "0x" + "11" * 20, "confirmations": 12, "native_asset": "ETH",
                             "feeds": [{"market": "BTC-PERP", "address": "0x" + "22" * 20, "heartbeat_s": 3600}]}
    entry.update(change)
    return entry


FEED = {"market": "BTC-PERP", "address": "0x" + "22" * 20, "heartbeat_s": 3600}


@pytest.mark.parametrize("change, message", [
    ({"feeds": [{**FEED, "address": ""}]}, r"feed BTC-PERP: '' is not a 0x address"),
    ({"feeds": [{**FEED, "address": "0x1234"}]}, r"feed BTC-PERP: '0x1234' is not a 0x address"),
    ({"feeds": [{**FEED, "market": "BTC/USDT"}]}, r"chain ethereum: feed market 'BTC/USDT': a perpetual's symbol"),
    ({"feeds": [{k: v for k, v in FEED.items() if k != "market"}]}, r"feeds\[0\] needs its market"),
    ({"feeds": [{k: v for k, v in FEED.items() if k != "heartbeat_s"}]}, r"feed BTC-PERP: heartbeat_s is required"),
    ({"feeds": [{**FEED, "heartbeat_s": 0}]}, r"chain ethereum: feed BTC-PERP: heartbeat_s must be at least 1"),
    ({"feeds": [{**FEED, "heartbeat_s": "1h"}]}, r"feed BTC-PERP: heartbeat_s must be a non-negative integer"),
    ({"feeds": [{**FEED, "margin_s": -5}]}, r"feed BTC-PERP: margin_s must be a non-negative integer"),
    ({"feeds": [{**FEED, "decimals": 8}]}, r"feeds\[0\]: unknown keys \['decimals'\]"),
    ({"feeds": [FEED, {**FEED, "address": FEED["address"].upper().replace("0X", "0x")}]}, "listed twice"),
    ({"feeds": {"BTC-PERP": FEED}}, "feeds must be a list"),
    ({"feeds": ["BTC-PERP"]}, r"feeds\[0\] must be a table"),
    ({"sequencer_uptime": "yes"}, r"sequencer_uptime: 'yes' is not a 0x address"),
    ({"feeds": [], "sequencer_uptime": "0x" + "33" * 20}, "a sequencer_uptime feed without feeds guards nothing"),
])
def test_wrong_feed_settings_are_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"chains": [_entry(**change)]}))
    with pytest.raises(ChainConfigError, match=message):
        load_chains({"DPG_CHAINS": str(p)})


def test_feeds_are_read_on_one_chain_only(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    second = _entry(name="polygon", chain_id=137, vault="0x" + "44" * 20)
    p.write_text(json.dumps({"chains": [_entry(), second]}))
    with pytest.raises(ChainConfigError, match="feeds are read on one chain only, but ethereum, polygon have feeds"):
        load_chains({"DPG_CHAINS": str(p)})
    second["feeds"] = []
    p.write_text(json.dumps({"chains": [_entry(), second]}))
    eth, polygon = load_chains({"DPG_CHAINS": str(p)})
    assert len(eth.feeds) == 1 and polygon.feeds == ()


def test_an_embedded_chain_deploys_a_feed_without_address_but_only_one_per_market(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    dev = {"market": "ETH-PERP", "heartbeat_s": 30}
    p.write_text(json.dumps({"chains": [_entry(rpc_url="", vault="", feeds=[dev])]}))
    (chain,) = load_chains({"DPG_CHAINS": str(p)})
    assert chain.embedded and chain.feeds == (FeedConfig("ETH-PERP", "", 30),)
    p.write_text(json.dumps({"chains": [_entry(rpc_url="", vault="", feeds=[dev, dev])]}))
    with pytest.raises(ChainConfigError, match="feed ETH-PERP at a deployed address listed twice"):
        load_chains({"DPG_CHAINS": str(p)})
