"""Fees to stakers on a real anvil node: fees collected by trading move to the stakers' reserve once
per reward period, leave through the vault's 3-of-5 withdrawal pipeline to the Staking contract,
are notified by the rewards distributor, and a staker claims their share to the base unit."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from eth_abi.abi import decode

from dpg.chain.broadcaster import Broadcaster
from dpg.chain.contracts import encode_call
from dpg.chain.governance import (
    DPG,
    HOLDER,
    STAKER,
    STAKER_STAKE,
    USDT,
    YEAR,
    Governance,
    account_view,
    deploy_governance,
    units_text,
)
from dpg.chain.rewards import NOTIFIED, RESERVE_ACCOUNT, StakerRewards, period_ref, period_start
from dpg.chain.rpc import Rpc, to_int
from dpg.chain.signer import Keys, dev_key, sign
from dpg.chain.withdrawals import WithdrawalStore
from dpg.core import events as E
from dpg.core.commands import Credit, PayStakers, PlaceOrder, SetStakerShare
from dpg.core.model import FEE_ACCOUNT, PPM, STAKERS_ACCOUNT, OrderType, Side
from dpg.system.node import Node
from tests.chain.conftest import DEPTH, DevChain

BTC = 10**8
WEEK = 7 * 86400
HOLDER_STAKE = 10_000_000 * DPG
SELLER, BUYER = 1, 2


def view(rpc: Rpc, to: str, sig: str, *args: object) -> int:
    (v,) = decode(["uint256"], rpc.eth_call(to, encode_call(sig, *args)))
    return int(v)


def send(rpc: Rpc, frm: str, to: str, sig: str, *args: object) -> None:
    tx = rpc.send_transaction({"from": frm, "to": to, "gas": hex(500_000), "data": encode_call(sig, *args)})
    assert to_int(rpc.wait_receipt(tx, timeout=10)["status"]) == 1, sig


@pytest.fixture
def store(pg_url: str) -> Iterator[WithdrawalStore]:
    s = WithdrawalStore(pg_url)
    try:
        yield s
    finally:
        s.close()


def funded(dev: DevChain, node: Node, account: int, token: str, asset: str, amount: int) -> None:
    """A deposit on the chain (the vault holds the tokens) credited by the engine."""
    dev.deposit_token(token, account, amount)
    _, ev = node.sequencer.submit_wait(Credit(account, asset, amount, f"test:{secrets.token_hex(4)}"))
    assert ev[0][0] != E.REJECTED, ev


def trade(node: Node) -> None:
    """The seller sells 20 BTC at 50,000 USDT to the buyer in two fills: both pay fees."""
    for _ in range(2):
        _, ev = node.sequencer.submit_wait(PlaceOrder(SELLER, "BTC/USDT", Side.SELL, OrderType.LIMIT,
                                                      50_000 * USDT, 10 * BTC))
        assert ev[0][0] == E.ORDER_NEW, ev
        _, ev = node.sequencer.submit_wait(PlaceOrder(BUYER, "BTC/USDT", Side.BUY, OrderType.LIMIT,
                                                      50_000 * USDT, 10 * BTC))
        assert any(e[0] == E.TRADE for e in ev), ev


def test_fees_reach_the_staking_contract_and_a_staker_claims_their_share(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    rpc, accounts = dev_chain.rpc, dev_chain.accounts
    gov: Governance = deploy_governance(rpc, accounts[0], dev_chain.usdt, staker=accounts[STAKER],
                                        holder=accounts[HOLDER])
    # the holder stakes too: two stakers share the reward
    send(rpc, accounts[HOLDER], gov.token, "approve(address,uint256)", gov.staking, HOLDER_STAKE)
    send(rpc, accounts[HOLDER], gov.staking, "stake(uint256)", HOLDER_STAKE)

    funded(dev_chain, node, SELLER, dev_chain.wbtc, "BTC", 20 * BTC)
    funded(dev_chain, node, BUYER, dev_chain.usdt, "USDT", 1_100_000 * USDT)
    node.sequencer.submit_wait(SetStakerShare(200_000, ""))  # 20 %: the contract's 2,000 bps
    trade(node)
    fees = node.engine.balance(FEE_ACCOUNT, "USDT")[0]
    assert fees > 0
    share = fees * 200_000 // PPM

    now_ns = node.clock.now()  # the exchange's clock, moved by the test as DPG_DEV_CLOCK would
    config = dev_chain.config()
    broadcaster = Broadcaster(config, Rpc(config.rpc_url), store, node.sequencer.submit_wait,
                              Keys((dev_key(1), dev_key(2)), dev_key(0)))
    store.save_chain(config, broadcaster.signers())
    rewards = StakerRewards(config, Rpc(config.rpc_url), store, node.sequencer.submit_wait, gov.staking, dev_key(0),
                            now_ns=lambda: now_ns, reserve=lambda: node.engine.balance(STAKERS_ACCOUNT, "USDT")[0],
                            period_s=WEEK, ttl_s=3600)

    # the period's share moves to the reserve and its payout is requested: the reserve is locked
    rewards.step()
    assert node.engine.balance(STAKERS_ACCOUNT, "USDT") == (0, share)
    assert node.engine.balance(FEE_ACCOUNT, "USDT")[0] == fees - share
    (wid, amount, to), = store._q("SELECT id, amount, to_address FROM withdrawals WHERE account = %s",
                                  (RESERVE_ACCOUNT,))
    assert (int(amount), to) == (share, gov.staking)
    # the period is paid once: another step neither pays nor requests again
    this_period = period_ref(period_start(now_ns // 10**9, WEEK))
    _, ev = node.sequencer.submit_wait(PayStakers("USDT", this_period))
    assert ev[0][0] == E.REJECTED and "DUPLICATE_REFERENCE" in str(ev[0])
    rewards.step()
    assert len(store._q("SELECT 1 FROM withdrawals WHERE account = %s", (RESERVE_ACCOUNT,))) == 1

    # the ordinary pipeline: two policy signatures and a human's, sent, completed at depth
    broadcaster.step()
    w = store.get(wid)
    assert w is not None and w.status == "signing"
    assert len(broadcaster.valid_signatures(w)) == 2
    assert store.add_signature(wid, dev_key(3).address, sign(w.terms(), dev_key(3)), "human")
    broadcaster.step()
    assert store.get(wid).status == "broadcast"  # type: ignore[union-attr]
    for _ in range(DEPTH):
        broadcaster.step()
        dev_chain.mine(1)
    broadcaster.step()
    assert store.get(wid).status == "completed"  # type: ignore[union-attr]
    assert node.engine.balance(STAKERS_ACCOUNT, "USDT") == (0, 0)
    assert view(rpc, dev_chain.usdt, "balanceOf(address)", gov.staking) == share
    assert node.engine.conservation_errors() == []

    # the distributor notifies the payout, once
    assert view(rpc, gov.staking, "rewardRate()") == 0
    (notified,) = rewards.notify_paid()
    assert rewards.notify_paid() == []
    assert [d for _, s, d in store.events(wid) if s == NOTIFIED] == [notified]
    notified_at = to_int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"])
    duration = view(rpc, gov.staking, "rewardsDuration()")
    rate = share // duration  # notifyRewardAmount: nothing unallocated before
    assert view(rpc, gov.staking, "rewardRate()") == rate
    yearly = account_view(rpc, gov, accounts[STAKER])["reward_per_dpg_year"]
    assert yearly == units_text(rate * YEAR * DPG // (STAKER_STAKE + HOLDER_STAKE), USDT) != "0"
    assert view(rpc, gov.staking, "periodFinish()") == notified_at + duration

    # the whole reward period passes; each staker's share follows the contract's formula
    rpc.call("evm_increaseTime", [duration + 60])
    rpc.mine()
    supply = STAKER_STAKE + HOLDER_STAKE
    per_token = rate * duration * 10**36 // supply  # Staking.SCALE
    expected = STAKER_STAKE * per_token // 10**36
    assert view(rpc, gov.staking, "earned(address)", accounts[STAKER]) == expected
    before = view(rpc, dev_chain.usdt, "balanceOf(address)", accounts[STAKER])
    send(rpc, accounts[STAKER], gov.staking, "getReward()")
    assert view(rpc, dev_chain.usdt, "balanceOf(address)", accounts[STAKER]) - before == expected
    assert view(rpc, gov.staking, "earned(address)", accounts[HOLDER]) == HOLDER_STAKE * per_token // 10**36
    # three quarters of the share, less the rate's rounding (under `duration` units, kept for the next
    # reward) and rewardPerToken's (under one unit: Staking.SCALE is 1e36)
    assert expected > 0
    assert 0 <= share * 3 // 4 - expected < duration * 3 // 4 + 2

    # fees of the same period wait for the next one, which pays them again through a new payout
    funded(dev_chain, node, SELLER, dev_chain.wbtc, "BTC", 20 * BTC)
    funded(dev_chain, node, BUYER, dev_chain.usdt, "USDT", 1_100_000 * USDT)
    trade(node)
    rewards.step()
    assert node.engine.balance(STAKERS_ACCOUNT, "USDT") == (0, 0)
    fees = node.engine.balance(FEE_ACCOUNT, "USDT")[0]
    now_ns += WEEK * 10**9
    rewards.step()
    assert node.engine.balance(STAKERS_ACCOUNT, "USDT") == (0, fees * 200_000 // PPM)
    assert len(store._q("SELECT 1 FROM withdrawals WHERE account = %s", (RESERVE_ACCOUNT,))) == 2
