"""ExchangeParams' events read as decisions and turned into their engine commands, each with the
decision's reference."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from dpg.chain.govwatch import decode_decision, reference, symbol_bytes
from dpg.core.commands import HaltMarket, ListMarket, SetFees, SetStakerShare

TX = "0x" + "ab" * 32


def _log(signature: str, change_id: int, market: str | None, types: list[str], values: list[Any],
         block: int = 7, index: int = 0) -> dict[str, Any]:
    topics = ["0x" + keccak(text=signature).hex(), "0x" + change_id.to_bytes(32, "big").hex()]
    if market is not None:
        topics.append("0x" + symbol_bytes(market).hex())
    return {"topics": topics, "data": "0x" + encode(types, values).hex(), "transactionHash": TX.upper(),
            "blockNumber": hex(block), "logIndex": hex(index), "removed": False}


def test_each_event_becomes_its_command_with_the_reference() -> None:
    ref = reference(31337, 4)
    assert ref == "gov:31337:4"
    fees = decode_decision(_log("FeesSet(uint64,bytes32,uint32,uint32)", 4, "BTC/USDT", ["uint32", "uint32"],
                                [800, 500]))
    assert fees is not None and (fees.change_id, fees.action, fees.market, fees.tx_hash) == (4, "fees", "BTC/USDT", TX)
    assert fees.command(ref) == SetFees("BTC/USDT", 800, 500, ref)
    share = decode_decision(_log("StakerShareSet(uint64,uint32)", 5, None, ["uint32"], [3_000]))
    assert share is not None and share.market is None
    assert share.command(ref) == SetStakerShare(300_000, ref)  # 30 %: 3,000 bps = 300,000 ppm
    listed = decode_decision(_log(
        "MarketListed(uint64,bytes32,bytes32,bytes32,uint128,uint128,uint128,uint32,uint32)", 6, "SOL/USDT",
        ["bytes32", "bytes32", "uint128", "uint128", "uint128", "uint32", "uint32"],
        [symbol_bytes("SOL"), symbol_bytes("USDT"), 10_000, 10**7, 5_000_000, 800, 1_000]))
    assert listed is not None
    assert listed.command(ref) == ListMarket("SOL/USDT", "SOL", "USDT", 10_000, 10**7, 5_000_000, 800, 1_000, ref)
    halt = decode_decision(_log("MarketHalted(uint64,bytes32)", 7, "ETH/USDT", [], []))
    resume = decode_decision(_log("MarketResumed(uint64,bytes32)", 8, "ETH/USDT", [], []))
    assert halt is not None and resume is not None
    assert halt.command(ref) == HaltMarket("ETH/USDT", True, ref)
    assert resume.command(ref) == HaltMarket("ETH/USDT", False, ref)


def test_other_logs_and_removed_logs_are_no_decision() -> None:
    assert decode_decision(_log("OwnershipTransferred(address,address)", 1, None, [], [])) is None
    removed = _log("MarketHalted(uint64,bytes32)", 7, "ETH/USDT", [], [])
    assert decode_decision({**removed, "removed": True}) is None
    assert decode_decision({"topics": [], "data": "0x"}) is None
