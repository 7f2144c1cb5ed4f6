"""The governance contracts on the embedded development chain: deployed and wired at the first
start (the governor proposes through the timelock, which owns Staking and ExchangeParams and governs
the Vault), the demo
holders' DPG and votes, the same contracts kept on a restart; and the CREATE addresses computed
ahead of deployment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_abi.abi import decode

from dpg.chain.config import ChainConfigError, default_chains, parse_chain
from dpg.chain.contracts import encode_call
from dpg.chain.embedded import start_embedded, transfer_eth
from dpg.chain.governance import (
    FEE_SHARE_BPS,
    HOLDER,
    HOLDER_HOLDING,
    PROPOSAL_THRESHOLD,
    STAKER,
    STAKER_HOLDING,
    STAKER_STAKE,
    SUPPLY,
    TIMELOCK_DELAY,
    create_address,
    govern_vault,
    role,
)
from dpg.chain.rpc import Rpc


def _read(rpc: Rpc, to: str, signature: str, out: str, *args: object) -> object:
    (value,) = decode([out], rpc.eth_call(to, encode_call(signature, *args)))
    return value


def test_create_address_matches_known_deployments() -> None:
    # the first contracts of anvil's dev account 0 (well known from every local deployment)
    deployer = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    assert create_address(deployer, 0) == "0x5fbdb2315678afecb367f032d93f642f64180aa3"
    assert create_address(deployer, 1) == "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"


def test_governance_is_deployed_wired_and_kept(tmp_path: Path) -> None:
    config = default_chains()[0]
    assert config.governance
    chain = start_embedded(config, tmp_path, kind="in-process")
    try:
        gov = chain.governance
        assert gov is not None
        rpc, accounts = chain.rpc, chain.accounts
        assert all(rpc.code(a) for a in gov.addresses())
        usdt = next(t.address for t in chain.config.tokens if t.symbol == "USDT")
        timelock, governor = gov.timelock, gov.governor

        # the timelock: 2 days, the governor alone proposes and cancels, anyone executes, no admin
        assert _read(rpc, timelock, "getMinDelay()", "uint256") == TIMELOCK_DELAY
        has_role = "hasRole(bytes32,address)"
        assert _read(rpc, timelock, has_role, "bool", role("PROPOSER_ROLE"), governor) is True
        assert _read(rpc, timelock, has_role, "bool", role("CANCELLER_ROLE"), governor) is True
        assert _read(rpc, timelock, has_role, "bool", role("EXECUTOR_ROLE"), "0x" + "00" * 20) is True
        assert _read(rpc, timelock, has_role, "bool", role("PROPOSER_ROLE"), accounts[0]) is False
        assert _read(rpc, timelock, has_role, "bool", b"\x00" * 32, accounts[0]) is False
        # the timelock owns what governance decides
        assert _read(rpc, gov.staking, "owner()", "address") == timelock
        assert _read(rpc, gov.params, "owner()", "address") == timelock
        assert _read(rpc, gov.staking, "rewardToken()", "address") == usdt
        assert _read(rpc, gov.staking, "stakingToken()", "address") == gov.token
        assert _read(rpc, gov.staking, "rewardsDistributor()", "address") == accounts[0]
        assert _read(rpc, gov.staking, "feeShareBps()", "uint256") == FEE_SHARE_BPS
        # the governor: its settings, on the tokens' timestamp clock
        assert _read(rpc, governor, "votingDelay()", "uint256") == 86_400
        assert _read(rpc, governor, "votingPeriod()", "uint256") == 604_800
        assert _read(rpc, governor, "proposalThreshold()", "uint256") == PROPOSAL_THRESHOLD
        assert _read(rpc, governor, "CLOCK_MODE()", "string") == "mode=timestamp"
        assert _read(rpc, governor, "timelock()", "address") == timelock

        # the demo holders: the staker votes with its stake and its delegated DPG, the holder
        # who never delegated has no votes
        staker, holder = accounts[STAKER], accounts[HOLDER]
        assert _read(rpc, gov.token, "balanceOf(address)", "uint256", staker) == STAKER_HOLDING - STAKER_STAKE
        assert _read(rpc, gov.staking, "staked(address)", "uint256", staker) == STAKER_STAKE
        assert _read(rpc, gov.token, "balanceOf(address)", "uint256", holder) == HOLDER_HOLDING
        assert _read(rpc, gov.token, "balanceOf(address)", "uint256", accounts[0]) == (
            SUPPLY - STAKER_HOLDING - HOLDER_HOLDING)
        rpc.mine()  # votes are read at a past timepoint
        now = int(rpc.block(rpc.block_number())["timestamp"], 16)  # type: ignore[index]
        get_votes = "getVotes(address,uint256)"
        assert _read(rpc, governor, get_votes, "uint256", staker, now - 1) == STAKER_HOLDING
        assert _read(rpc, governor, get_votes, "uint256", holder, now - 1) == 0
        assert _read(rpc, governor, "quorum(uint256)", "uint256", now - 1) == SUPPLY * 4 // 100
        # ExchangeParams answers only the timelock
        with pytest.raises(Exception, match="revert"):
            rpc.eth_call(gov.params, encode_call("setStakerShare(uint32)", 1))
        # the Vault is governed by the timelock: it alone sets the limits, the guardian, the escape periods
        vault = chain.config.vault
        assert _read(rpc, vault, "governance()", "address") == timelock
        configure = encode_call("governedConfigure((address,uint256,uint256,bool))", (usdt, 1, 1, False))
        rpc.wait_receipt(transfer_eth(rpc, accounts[0], timelock, 10**18))  # gas for a call from the timelock
        assert rpc.call("eth_call", [{"from": timelock, "to": vault, "data": configure}, "latest"]) == "0x"
        for call in (configure, encode_call("governedSetGuardian(address)", accounts[1]),
                     encode_call("setEscapePeriods(uint256,uint256)", 86_400, 86_400)):
            with pytest.raises(Exception, match="revert"):
                rpc.call("eth_call", [{"from": accounts[0], "to": vault, "data": call}, "latest"])
        assert govern_vault(rpc, accounts[0], vault, timelock) is False  # named once, kept
        with pytest.raises(RuntimeError, match="governed by"):
            govern_vault(rpc, accounts[0], vault, gov.governor)
    finally:
        chain.stop()

    record = json.loads((tmp_path / "chain" / "ethereum" / "deployment.json").read_text())
    assert record["governance"] == gov.as_dict()
    again = start_embedded(config, tmp_path, kind="in-process")
    try:
        assert again.governance == gov  # kept, not deployed again
        assert _read(again.rpc, again.config.vault, "governance()", "address") == gov.timelock
        assert _read(again.rpc, gov.staking, "totalStaked()", "uint256") == STAKER_STAKE
    finally:
        again.stop()


def test_governance_is_configured_on_an_embedded_chain_with_usdt() -> None:
    base = {"name": "dev", "chain_id": 31337, "confirmations": 1, "governance": True,
            "tokens": {"USDT": {"decimals": 6}}}
    assert parse_chain(base).governance
    assert not parse_chain({**base, "governance": False}).governance
    with pytest.raises(ChainConfigError, match="no USDT token"):
        parse_chain({**base, "tokens": {"WBTC": {"decimals": 8}}})
    with pytest.raises(ChainConfigError, match="embedded chain only"):
        parse_chain({**base, "rpc_url": "http://127.0.0.1:8545", "vault": "0x" + "11" * 20,
                     "tokens": {"USDT": {"decimals": 6, "address": "0x" + "22" * 20}}})
    with pytest.raises(ChainConfigError, match="true or false"):
        parse_chain({**base, "governance": "yes"})
