"""The exchange's server of forced withdrawals (dpg.chain.forced) on a real anvil node and exchange
engine: a request seen only at the confirmation depth, the whole available balance locked once
(also across a crash between the engine's lock and the withdrawal's row), signed by the policy
signers past the per-user limits, paid to the exit address and served on the chain; an account with
nothing available answered by the signed zero answer. No API here: the tree is built and published
in the registry directly."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi.abi import decode

from dpg.chain import escape
from dpg.chain.broadcaster import Broadcaster, fees, send_raw, sign_tx
from dpg.chain.config import NATIVE
from dpg.chain.contracts import decode_error, encode_call
from dpg.chain.forced import ANSWER_TTL, SERVED_OTHERWISE, ForcedServer, ForcedStore, sign_zero, withdrawal_id
from dpg.chain.rpc import Rpc, RpcError, to_int
from dpg.chain.signer import Keys, ZeroAnswer, dev_key, ordered, sign
from dpg.chain.store import DepositStore
from dpg.chain.withdrawals import WithdrawalStore
from dpg.core import events as E
from dpg.core.commands import Credit, RequestForcedWithdrawal, Transfer
from dpg.por import tree as por
from dpg.por.registry import GAS_PUBLISH, PUBLISH, deploy_registry
from dpg.system.node import Node
from tests.chain.conftest import CHAIN_ID, DEPTH, DevChain

ETH = 10**18
RICH, EMPTY = 7, 8  # accounts: one with ETH available at the request, one with none
EXITS = {RICH: dev_key(12), EMPTY: dev_key(13)}


@pytest.fixture
def stores(pg_url: str) -> Iterator[tuple[ForcedStore, WithdrawalStore]]:
    f, w = ForcedStore(pg_url), WithdrawalStore(pg_url)
    try:
        yield f, w
    finally:
        f.close()
        w.close()


def send_from(rpc: Rpc, key: Any, to: str, data: str) -> dict[str, Any]:
    """A transaction signed by ``key`` (an exit address: not one of anvil's unlocked accounts)."""
    gas = to_int(rpc.call("eth_estimateGas", [{"from": key.address, "to": to, "data": data}]))
    tip, max_fee = fees(rpc)
    nonce = to_int(rpc.call("eth_getTransactionCount", [key.address, "pending"]))
    raw, tx_hash = sign_tx(key, CHAIN_ID, to, data, nonce, gas * 5 // 4, tip, max_fee)
    send_raw(rpc, raw)
    receipt = rpc.wait_receipt(tx_hash, timeout=10)
    assert to_int(receipt["status"]) == 1, receipt
    return receipt


def refusal(rpc: Rpc, to: str, data: str, sender: str = dev_key(9).address) -> str:
    try:
        rpc.call("eth_estimateGas", [{"from": sender, "to": to, "data": data}])
    except RpcError as e:
        return decode_error("Vault", e.data or "") or e.message
    return "accepted"


def published_tree(dev: DevChain, balances: dict[int, int]) -> por.Tree:
    """A registry named in the vault, and epoch 1's ETH tree of ``balances`` (with the exit addresses and
    what the vault counts as deposited for each account, nothing paid) published in it."""
    registry = deploy_registry(dev.rpc, dev.accounts[0], dev.vault, {"ETH": NATIVE, "USDT": dev.usdt})
    deposited = {a: escape.view_uint(dev.rpc, dev.vault, "depositedOf(uint64,address)", a, NATIVE) for a in balances}
    rows = [(str(a), b, EXITS[a].address, deposited[a], 0) for a, b in balances.items()]
    t = por.build(por.Params(CHAIN_ID, registry, 1, "ETH"), rows, secrets.token_bytes(32))
    head = dev.rpc.block_number()
    block_hash = dev.rpc.block_hash(head)
    assert block_hash is not None
    data = encode_call(PUBLISH, 1, t.params.asset_id, t.root, t.total, t.depth, head, bytes.fromhex(block_hash[2:]),
                       "bafy-test", [])
    tx = dev.rpc.send_transaction({"from": dev.accounts[0], "to": registry, "gas": hex(GAS_PUBLISH), "data": data})
    assert to_int(dev.rpc.wait_receipt(tx)["status"]) == 1
    for key in EXITS.values():
        dev.rpc.call("anvil_setBalance", [key.address, hex(10 * ETH)])
    return t


def request(dev: DevChain, t: por.Tree, account: int) -> str:
    receipt = send_from(dev.rpc, EXITS[account], dev.vault, escape.request_call(por.proof(t, str(account))))
    found = escape.request_id_of(receipt, dev.vault)
    assert found is not None
    return found


def test_a_request_is_served_once_with_the_whole_available_balance_even_across_a_crash(
        dev_chain: DevChain, node: Node, stores: tuple[ForcedStore, WithdrawalStore], pg_url: str) -> None:
    fstore, wstore = stores
    config = dev_chain.config()
    keys = Keys((dev_key(1), dev_key(2)), dev_key(0))
    submit = node.sequencer.submit_wait
    b = Broadcaster(config, Rpc(config.rpc_url), wstore, submit, keys)
    wstore.save_chain(config, b.signers())
    dev_chain.deposit_eth(RICH, 5 * ETH)
    _, ev = submit(Credit(RICH, "ETH", 5 * ETH, "test:rich"))
    assert ev[0][0] != E.REJECTED
    dev_chain.deposit_eth(EMPTY, 1 * ETH)  # the vault holds what the tree says
    t = published_tree(dev_chain, {RICH: 5 * ETH, EMPTY: 1 * ETH})
    rid = request(dev_chain, t, RICH)
    again = escape.request_call(por.proof(t, str(RICH)))
    assert refusal(dev_chain.rpc, dev_chain.vault, again, EXITS[RICH].address) == "RequestOpen()"

    server = ForcedServer(config, Rpc(config.rpc_url), fstore, DepositStore(pg_url), submit, keys)
    server.step()
    assert fstore.get(rid) is None  # not before the confirmation depth
    server.scan()
    dev_chain.mine(DEPTH)
    assert [lg.request_id for lg in server.scan()] == [rid]
    assert server.scan() == []  # recorded once

    # the process that stopped between the engine's lock and the withdrawal's row: attempt 0 is locked
    first = withdrawal_id(rid, 0)
    fstore.update(rid, status="withdrawing", withdrawal_id=first)
    _, ev = submit(RequestForcedWithdrawal(RICH, "ETH", first, f"ethereum:{EXITS[RICH].address}:{rid}"))
    assert ev[0][0] == E.WITHDRAWAL_REQUESTED and node.engine.balance(RICH, "ETH") == (0, 5 * ETH)
    restarted = ForcedServer(config, Rpc(config.rpc_url), fstore, DepositStore(pg_url), submit, keys)
    restarted.step()  # the engine knows attempt 0: its funds return, attempt 1 is made
    f = fstore.get(rid)
    assert f is not None and (f.status, f.attempt, f.withdrawal_id) == ("seen", 1, None)
    assert node.engine.balance(RICH, "ETH") == (5 * ETH, 0)
    restarted.step()
    f = fstore.get(rid)
    assert f is not None and (f.status, f.withdrawal_id) == ("withdrawing", withdrawal_id(rid, 1))
    assert node.engine.balance(RICH, "ETH") == (0, 5 * ETH)  # locked once
    w = wstore.get(withdrawal_id(rid, 1))
    assert w is not None and (w.amount, w.to_address, w.token, w.status) == (
        5 * ETH, EXITS[RICH].address.lower(), NATIVE, "signing")
    assert wstore.get(first) is None
    restarted.step()  # nothing more
    assert node.engine.balance(RICH, "ETH") == (0, 5 * ETH)

    # the policy signers sign it though the address is on no allow-list and 5 ETH is above no limit
    # that would stop it; a human adds the third; the vault pays it and marks the request served
    b.step()
    assert len(b.valid_signatures(w)) == 2 and not wstore.reviews(w.id)
    assert wstore.add_signature(w.id, dev_key(3).address, sign(w.terms(), dev_key(3)), "human")
    before = dev_chain.rpc.balance(EXITS[RICH].address)
    for _ in range(DEPTH + 2):
        b.step()
        dev_chain.mine(1)
    assert wstore.get(w.id).status == "completed"  # type: ignore[union-attr]
    assert dev_chain.rpc.balance(EXITS[RICH].address) == before + 5 * ETH
    assert node.engine.balance(RICH, "ETH") == (0, 0)
    assert escape.forced_request(dev_chain.rpc, dev_chain.vault, rid).served
    restarted.step()
    assert fstore.get(rid).status == "served"  # type: ignore[union-attr]
    assert refusal(dev_chain.rpc, dev_chain.vault, escape.freeze_unserved_call(rid)) == "AlreadyServed()"
    assert node.engine.conservation_errors() == []

    # the other account had 1 ETH at the snapshot, none available now: the zero answer
    _, ev = submit(Credit(EMPTY, "ETH", 1 * ETH, "test:empty"))
    _, ev = submit(Transfer(EMPTY, RICH, "ETH", 1 * ETH))
    assert ev[0][0] != E.REJECTED
    zid = request(dev_chain, t, EMPTY)
    dev_chain.mine(DEPTH)
    restarted.step()
    z = fstore.get(zid)
    assert z is not None and z.status == "zero" and len(fstore.signatures(zid)) == 2
    assert not escape.forced_request(dev_chain.rpc, dev_chain.vault, zid).served  # two signatures do not serve it
    (vault_digest,) = decode(["bytes32"], dev_chain.rpc.eth_call(dev_chain.vault, encode_call(
        "forcedZeroDigest(bytes32,uint256)", bytes.fromhex(zid[2:]), z.deadline)))
    assert restarted.answer(z).digest() == bytes(vault_digest)  # what the signers sign is what the vault checks
    # nobody added the third signature in time: the answer is dropped and the request decided again
    dev_chain.rpc.call("evm_increaseTime", [ANSWER_TTL + 1])
    dev_chain.mine(1)
    restarted.step()
    again = fstore.get(zid)
    assert again is not None and (again.status, again.deadline) == ("seen", None) and not fstore.signatures(zid)
    restarted.step()
    z2 = fstore.get(zid)
    assert z2 is not None and z2.status == "zero" and z2.deadline is not None and z.deadline is not None
    assert z2.deadline > z.deadline and len(fstore.signatures(zid)) == 2
    with pytest.raises(ValueError, match="not a signer"):
        sign_zero(fstore, zid, dev_key(7), restarted.signers())
    sign_zero(fstore, zid, dev_key(4), restarted.signers())
    restarted.step()  # three: answerForcedZero is sent
    dev_chain.mine(1)
    restarted.step()
    assert escape.forced_request(dev_chain.rpc, dev_chain.vault, zid).served
    assert fstore.get(zid).status == "served"  # type: ignore[union-attr]
    assert node.engine.balance(EMPTY, "ETH") == (0, 0) and node.engine.balance(RICH, "ETH") == (1 * ETH, 0)
    assert refusal(dev_chain.rpc, dev_chain.vault, escape.freeze_unserved_call(zid)) == "AlreadyServed()"
    paid, answered = wstore.get(w.id), fstore.get(zid)
    assert paid is not None and paid.tx_hash and answered is not None and answered.answer_tx
    gas = {name: to_int(dev_chain.rpc.receipt(tx)["gasUsed"])  # type: ignore[index]
           for name, tx in (("withdraw serving a request", paid.tx_hash), ("answerForcedZero", answered.answer_tx))}
    print(f"\ngas: {gas}")


def test_an_attempt_not_yet_signed_is_withdrawn_when_the_request_is_served_otherwise(
        dev_chain: DevChain, node: Node, stores: tuple[ForcedStore, WithdrawalStore], pg_url: str) -> None:
    fstore, wstore = stores
    config = dev_chain.config()
    keys = Keys((dev_key(1), dev_key(2)), dev_key(0))
    submit = node.sequencer.submit_wait
    b = Broadcaster(config, Rpc(config.rpc_url), wstore, submit, keys)
    wstore.save_chain(config, b.signers())
    for account, amount in ((RICH, 2 * ETH), (EMPTY, 1 * ETH)):
        dev_chain.deposit_eth(account, amount)
        submit(Credit(account, "ETH", amount, f"test:{account}"))
    t = published_tree(dev_chain, {RICH: 2 * ETH, EMPTY: 1 * ETH})
    rid = request(dev_chain, t, RICH)
    dev_chain.mine(DEPTH)
    server = ForcedServer(config, Rpc(config.rpc_url), fstore, DepositStore(pg_url), submit, keys)
    server.step()
    wid = withdrawal_id(rid, 0)
    b.step()  # two policy signatures, no human's yet
    assert node.engine.balance(RICH, "ETH") == (0, 2 * ETH) and len(wstore.signatures(wid)) == 2

    # three signers answer the request otherwise (here: a zero answer), before the human signed
    deadline = int(dev_chain.rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16) + 3600
    answer = ZeroAnswer(rid, deadline, CHAIN_ID, dev_chain.vault)
    sigs = {k.address.lower(): sign(answer, k) for k in (dev_key(1), dev_key(2), dev_key(3))}
    tx = dev_chain.rpc.send_transaction({"from": dev_chain.accounts[9], "to": dev_chain.vault, "gas": hex(300_000),
                                         "data": escape.answer_zero_call(rid, deadline, ordered(sigs))})
    assert to_int(dev_chain.rpc.wait_receipt(tx)["status"]) == 1
    server.step()
    w = wstore.get(wid)
    f = fstore.get(rid)
    assert w is not None and (w.status, w.reason) == ("failed", SERVED_OTHERWISE)
    assert f is not None and f.status == "served"
    assert node.engine.balance(RICH, "ETH") == (2 * ETH, 0)  # the funds are back
    assert "cancelled" in [step for _, step, _ in wstore.events(wid)]
    assert node.engine.conservation_errors() == []
