"""The withdrawal pipeline on a real anvil node: policy and human signatures, the broadcaster
(nonce, fees, replacement of a stuck transaction, a reorged payout), the time-lock, expiry judged at
the confirmation depth, a queued withdrawal invalidated by a signer change, a user's cancel against
a signer, and the vault refusing every malformed withdrawal over JSON-RPC."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from eth_abi.abi import decode

from dpg.chain.broadcaster import WITHDRAW, Broadcaster, Policy
from dpg.chain.contracts import encode_call, encode_deploy, load_artifact
from dpg.chain.embedded import FORCED_GRACE_SECONDS, SILENCE_SECONDS
from dpg.chain.rpc import Rpc, RpcError, to_int
from dpg.chain.signer import Keys, Terms, checksum, dev_key, ordered, recover, sign
from dpg.chain.withdrawals import WithdrawalStore
from dpg.core import events as E
from dpg.core.commands import Credit, RequestWithdrawal
from dpg.system.node import Node
from tests.chain.conftest import CHAIN_ID, DEPTH, DevChain

USDT = 10**6
ACCOUNT = 7
DEST = dev_key(8).address.lower()


def token_balance(rpc: Rpc, token: str, who: str) -> int:
    (v,) = decode(["uint256"], rpc.eth_call(token, encode_call("balanceOf(address)", who)))
    return int(v)


def chain_time(rpc: Rpc) -> int:
    return to_int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"])


@pytest.fixture
def store(pg_url: str) -> Iterator[WithdrawalStore]:
    s = WithdrawalStore(pg_url)
    try:
        yield s
    finally:
        s.close()


class Pipeline:
    """A broadcaster on the dev chain and the exchange node, and requests made as the API makes them."""

    def __init__(self, dev: DevChain, node: Node, store: WithdrawalStore, vault: str | None = None,
                 policy: Policy | None = None, replace_after: float = 30.0) -> None:
        self.dev, self.node, self.store = dev, node, store
        self.config = dev.config(vault=vault or dev.vault)
        self.b = Broadcaster(self.config, Rpc(self.config.rpc_url), store, node.sequencer.submit_wait,
                             Keys((dev_key(1), dev_key(2)), dev_key(0)), policy, replace_after=replace_after)
        store.save_chain(self.config, self.b.signers())

    def fund(self, account: int, usdt: int) -> None:
        """The vault holds the tokens (a deposit on the chain) and the engine credits them."""
        self.dev.deposit_token(self.dev.usdt, account, usdt)
        _, ev = self.node.sequencer.submit_wait(Credit(account, "USDT", usdt, f"test:{secrets.token_hex(4)}"))
        assert ev[0][0] != E.REJECTED, ev

    def request(self, account: int, amount: int, *, ttl: int = 3600, to: str = DEST, asset: str = "USDT",
                token: str | None = None) -> str:
        wid = "0x" + secrets.token_bytes(32).hex()
        c = self.config
        self.store._q("INSERT INTO withdrawal_addresses (account, chain, address) VALUES (%s, %s, %s)"
                      " ON CONFLICT DO NOTHING", (account, c.name, to))
        self.store._q(
            "INSERT INTO withdrawals (id, account, asset, amount, chain, chain_id, vault, token, to_address, deadline,"
            " status, required) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'requesting', %s)",
            (wid, account, asset, amount, c.name, c.chain_id, c.vault, token or self.dev.usdt, to,
             chain_time(self.dev.rpc) + ttl, c.confirmations))
        seq, ev = self.node.sequencer.submit_wait(RequestWithdrawal(account, asset, amount, wid, f"{c.name}:{to}"))
        assert ev[0][0] != E.REJECTED, ev
        self.store.update(wid, "requested", status="signing", request_seq=seq)
        return wid

    def human(self, wid: str, index: int) -> None:
        w = self.store.get(wid)
        assert w is not None
        assert self.store.add_signature(wid, dev_key(index).address, sign(w.terms(), dev_key(index)), "human")

    def status(self, wid: str) -> str:
        w = self.store.get(wid)
        assert w is not None
        return w.status

    def steps(self, wid: str) -> list[str]:
        return [s for _, s, _ in self.store.events(wid)]


def usdt_of(node: Node, account: int) -> tuple[int, int]:
    """(available, locked) USDT of ``account`` in the engine."""
    return node.engine.balance(account, "USDT")


def test_policy_signs_a_human_adds_the_third_and_the_payout_completes_at_depth(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store)
    p.fund(ACCOUNT, 5_000 * USDT)
    vault_before = token_balance(dev_chain.rpc, dev_chain.usdt, dev_chain.vault)
    wid = p.request(ACCOUNT, 3_000 * USDT)
    assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 3_000 * USDT)

    p.b.step()  # both policy signers sign; two of three
    assert p.status(wid) == "signing"
    assert len(p.b.valid_signatures(store.get(wid))) == 2  # type: ignore[arg-type]
    p.human(wid, 3)
    p.b.step()  # 3/3: sent (anvil mines it at once)
    assert p.status(wid) == "broadcast"
    p.b.step()
    w = store.get(wid)
    assert w is not None and w.status == "confirming" and w.confirmations == 1
    dev_chain.mine(1)
    p.b.step()
    assert p.status(wid) == "confirming"  # 2 of 3
    dev_chain.mine(1)
    p.b.step()
    assert p.status(wid) == "completed"

    assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 0)
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 3_000 * USDT
    assert token_balance(dev_chain.rpc, dev_chain.usdt, dev_chain.vault) == vault_before - 3_000 * USDT
    assert p.steps(wid)[:6] == ["requested", "signed 1/3", "signed 2/3", "signed 3/3", "signed", "broadcast"]
    assert p.steps(wid)[-1] == "completed"
    assert node.engine.conservation_errors() == []
    p.b.step()  # nothing is paid or debited twice
    assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 0)


def test_policy_declines_above_its_limit_then_three_humans_sign(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store, policy=Policy(auto_limit={"USDT": 1_000 * USDT}))
    p.fund(ACCOUNT, 5_000 * USDT)
    wid = p.request(ACCOUNT, 3_000 * USDT)
    p.b.step()
    reviews = store.reviews(wid)
    assert {d for d, _ in reviews.values()} == {"declined"} and len(reviews) == 2
    assert "automatic limit" in next(iter(reviews.values()))[1]
    p.human(wid, 3)
    p.human(wid, 4)
    p.b.step()
    assert p.status(wid) == "signing"
    p.human(wid, 5)
    p.b.step()
    dev_chain.mine(3)
    p.b.step()
    assert p.status(wid) == "completed"
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 3_000 * USDT


def test_a_human_rejection_fails_it_and_returns_the_funds(dev_chain: DevChain, node: Node,
                                                         store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store)
    p.fund(ACCOUNT, 5_000 * USDT)
    wid = p.request(ACCOUNT, 3_000 * USDT)
    p.b.step()
    store.add_review(wid, dev_key(3).address, "rejected", "unusual destination")
    p.b.step()
    w = store.get(wid)
    assert w is not None and w.status == "failed" and "rejected" in (w.reason or "")
    assert usdt_of(node, ACCOUNT) == (5_000 * USDT, 0)
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 0


def test_an_unsigned_withdrawal_expires_and_its_funds_return(dev_chain: DevChain, node: Node,
                                                            store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store)
    p.fund(ACCOUNT, 5_000 * USDT)
    wid = p.request(ACCOUNT, 3_000 * USDT, ttl=30)
    p.b.step()
    assert p.status(wid) == "signing"
    dev_chain.rpc.call("evm_increaseTime", [60])
    dev_chain.mine(DEPTH)
    p.b.step()
    assert p.status(wid) == "failed"
    assert usdt_of(node, ACCOUNT) == (5_000 * USDT, 0)


def test_a_signed_withdrawal_the_vault_cannot_pay_is_retried_then_expires_safely(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store)
    node.sequencer.submit_wait(Credit(ACCOUNT, "USDT", 5_000 * USDT, "test:ledger-only"))  # nothing in the vault
    wid = p.request(ACCOUNT, 3_000 * USDT, ttl=60)
    p.b.step()
    p.human(wid, 3)
    p.b.step()
    w = store.get(wid)
    assert w is not None and w.status == "signed" and w.reason == "InsufficientHoldings"
    assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 3_000 * USDT)  # still locked: it may yet be paid
    dev_chain.rpc.call("evm_increaseTime", [120])
    dev_chain.mine(DEPTH)
    p.b.step()
    w = store.get(wid)
    assert w is not None and w.status == "failed" and "expired" in (w.reason or "")
    assert usdt_of(node, ACCOUNT) == (5_000 * USDT, 0)


def test_the_deadline_is_judged_at_the_confirmation_depth_not_at_the_head(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    """The head's block is past the deadline, but a reorg could replace it (and the blocks under it,
    up to the confirmation depth) with blocks still in time: failing the withdrawal then would return
    its funds while the vault may yet pay it. It fails once a block at the depth is past the deadline."""
    p = Pipeline(dev_chain, node, store)
    node.sequencer.submit_wait(Credit(ACCOUNT, "USDT", 5_000 * USDT, "test:ledger-only"))  # nothing in the vault
    unsigned = p.request(ACCOUNT, 1_000 * USDT, ttl=60)
    signed = p.request(ACCOUNT, 2_000 * USDT, ttl=60)
    p.b.step()
    p.human(signed, 3)
    p.b.step()
    assert (p.status(unsigned), p.status(signed)) == ("signing", "signed")  # the vault cannot pay it yet
    deadline = max(w.deadline for w in (store.get(unsigned), store.get(signed)) if w is not None)
    dev_chain.rpc.call("evm_increaseTime", [120])
    for _ in range(DEPTH - 1):
        dev_chain.mine(1)
        assert chain_time(dev_chain.rpc) > deadline
        p.b.step()
        assert (p.status(unsigned), p.status(signed)) == ("signing", "signed")  # not at the depth yet
        assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 3_000 * USDT)
    dev_chain.mine(1)  # now the block DEPTH confirmations deep is past the deadline too
    p.b.step()
    assert (p.status(unsigned), p.status(signed)) == ("failed", "failed")
    assert usdt_of(node, ACCOUNT) == (5_000 * USDT, 0)


def _vault_with_threshold(dev: DevChain, threshold: int) -> str:
    art = load_artifact("Vault")
    tx = dev.rpc.send_transaction({"from": dev.accounts[0], "gas": hex(8_000_000), "data": encode_deploy(
        art, dev.accounts[1:6], dev.accounts[0], 3600, FORCED_GRACE_SECONDS, SILENCE_SECONDS,
        [(dev.usdt, threshold, 0, False)])})
    return str(dev.rpc.wait_receipt(tx)["contractAddress"]).lower()


def test_a_large_withdrawal_is_time_locked_then_executed(dev_chain: DevChain, node: Node,
                                                        store: WithdrawalStore) -> None:
    vault = _vault_with_threshold(dev_chain, 1_000 * USDT)
    dev_chain.vault = vault
    p = Pipeline(dev_chain, node, store, vault=vault)
    p.fund(ACCOUNT, 5_000 * USDT)
    wid = p.request(ACCOUNT, 3_000 * USDT)
    p.b.step()
    p.human(wid, 3)
    p.b.step()
    p.b.step()
    dev_chain.mine(3)
    p.b.step()
    w = store.get(wid)
    assert w is not None and w.status == "queued" and w.executable_at is not None
    p.b.step()  # executing now would revert: the broadcaster waits for the chain's time
    assert p.status(wid) == "queued" and token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 0
    dev_chain.rpc.call("evm_increaseTime", [3601])
    dev_chain.mine(1)
    p.b.step()  # executeQueued sent
    assert p.status(wid) == "broadcast"
    p.b.step()
    dev_chain.mine(3)
    p.b.step()
    assert p.status(wid) == "completed"
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 3_000 * USDT
    assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 0)


def _change_signers(dev: DevChain, vault: str, new: list[str], nonce: int, by: tuple[int, ...]) -> None:
    """The vault's ``changeSigners`` with the EIP-712 signatures of the dev signers ``by``."""
    from eth_account.messages import encode_typed_data

    deadline = chain_time(dev.rpc) + 3600
    data = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "ChangeSigners": [{"name": "signers", "type": "address[5]"}, {"name": "nonce", "type": "uint256"},
                                    {"name": "deadline", "type": "uint256"}]},
        "primaryType": "ChangeSigners",
        "domain": {"name": "DPG Vault", "version": "1", "chainId": CHAIN_ID, "verifyingContract": checksum(vault)},
        "message": {"signers": [checksum(a) for a in new], "nonce": nonce, "deadline": deadline},
    }
    sigs = {dev_key(i).address.lower(): bytes(dev_key(i).sign_message(encode_typed_data(full_message=data)).signature)
            for i in by}
    call = encode_call("changeSigners(address[5],uint256,uint256,bytes[])", [checksum(a) for a in new], nonce,
                       deadline, [sigs[a] for a in sorted(sigs, key=lambda a: int(a, 16))])
    r = dev.rpc.wait_receipt(dev.rpc.send_transaction({"from": dev.accounts[0], "to": vault, "data": call,
                                                       "gas": hex(1_000_000)}))
    assert to_int(r["status"]) == 1, r


def test_a_queued_withdrawal_whose_signer_left_fails_and_its_funds_return(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    vault = _vault_with_threshold(dev_chain, 1_000 * USDT)
    dev_chain.vault = vault
    p = Pipeline(dev_chain, node, store, vault=vault)
    p.fund(ACCOUNT, 5_000 * USDT)
    wid = p.request(ACCOUNT, 3_000 * USDT)
    p.b.step()
    p.human(wid, 3)  # approved by the policy signers 1, 2 and the human 3
    p.b.step()
    p.b.step()
    dev_chain.mine(DEPTH)
    p.b.step()
    assert p.status(wid) == "queued"
    # signer 3 leaves the vault's signers (replaced by dev account 6)
    _change_signers(dev_chain, vault, [dev_key(i).address for i in (1, 2, 6, 4, 5)], 0, by=(1, 2, 4))
    dev_chain.rpc.call("evm_increaseTime", [3601])
    dev_chain.mine(1)
    p.b.step()  # executeQueued: the vault cancels it instead of paying it
    p.b.step()
    dev_chain.mine(DEPTH)
    p.b.step()
    w = store.get(wid)
    assert w is not None and w.status == "failed", p.steps(wid)
    assert "invalidated" in (w.reason or "") and dev_key(3).address.lower() in (w.reason or "")
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 0
    assert usdt_of(node, ACCOUNT) == (5_000 * USDT, 0)
    # the broadcaster follows the new signers: signer 3's signature no longer counts
    again = p.request(ACCOUNT, 500 * USDT)
    p.b.step()
    p.human(again, 3)
    p.b.step()
    w = store.get(again)
    assert w is not None and w.status == "signing" and len(p.b.valid_signatures(w)) == 2
    p.human(again, 6)
    p.b.step()
    dev_chain.mine(DEPTH)
    p.b.step()
    p.b.step()
    assert p.status(again) == "completed"
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 500 * USDT


def test_a_queued_withdrawal_someone_else_invalidates_fails_with_the_signer_who_left(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    """The vault's state is seen cancelled with no receipt of the broadcaster's own: the reason still
    names the signer who left (from the vault's WithdrawalInvalidated log), not a generic cancel."""
    vault = _vault_with_threshold(dev_chain, 1_000 * USDT)
    dev_chain.vault = vault
    p = Pipeline(dev_chain, node, store, vault=vault)
    p.fund(ACCOUNT, 5_000 * USDT)
    wid = p.request(ACCOUNT, 3_000 * USDT)
    p.b.step()
    p.human(wid, 3)
    p.b.step()
    p.b.step()
    dev_chain.mine(DEPTH)
    p.b.step()
    assert p.status(wid) == "queued"
    _change_signers(dev_chain, vault, [dev_key(i).address for i in (1, 2, 6, 4, 5)], 0, by=(1, 2, 4))
    call = encode_call("executeQueued(bytes32)", bytes.fromhex(wid[2:]))
    dev_chain.mined(dev_chain.rpc.send_transaction({"from": dev_chain.accounts[9], "to": vault, "data": call,
                                                    "gas": hex(400_000)}))
    p.b.step()  # cancelled in the vault, not yet at the confirmation depth
    assert p.status(wid) == "queued"
    dev_chain.mine(DEPTH)
    p.b.step()
    w = store.get(wid)
    assert w is not None and w.status == "failed", p.steps(wid)
    assert "invalidated" in (w.reason or "") and dev_key(3).address.lower() in (w.reason or "")
    assert store.txs(wid)[-1].purpose == "withdraw"  # the broadcaster sent no execute of its own
    assert usdt_of(node, ACCOUNT) == (5_000 * USDT, 0)


def test_a_stuck_transaction_is_replaced_and_only_one_pays(dev_chain: DevChain, node: Node,
                                                          store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store, replace_after=0.2)
    p.fund(ACCOUNT, 5_000 * USDT)
    wid = p.request(ACCOUNT, 3_000 * USDT)
    p.b.step()
    dev_chain.rpc.call("evm_setAutomine", [False])
    p.human(wid, 3)
    p.b.step()
    first = store.get(wid)
    assert first is not None and first.status == "broadcast"
    time.sleep(0.3)
    p.b.step()  # not mined after replace_after: replaced, same nonce, higher fees
    second = store.get(wid)
    assert second is not None and second.tx_hash != first.tx_hash
    txs = store.txs(wid)
    assert len(txs) == 2 and txs[0].nonce == txs[1].nonce and txs[1].max_fee > txs[0].max_fee
    dev_chain.rpc.call("evm_setAutomine", [True])
    dev_chain.mine(3)
    p.b.step()
    p.b.step()
    w = store.get(wid)
    assert w is not None and w.status == "completed" and w.tx_hash == second.tx_hash
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 3_000 * USDT
    assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 0)


def test_a_payout_reorged_out_is_sent_again_and_completes_once(dev_chain: DevChain, node: Node,
                                                              store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store)
    p.fund(ACCOUNT, 5_000 * USDT)
    wid = p.request(ACCOUNT, 3_000 * USDT)
    p.b.step()
    p.human(wid, 3)
    p.b.step()
    p.b.step()
    assert p.status(wid) == "confirming"
    dev_chain.reorg(1)  # the block with the payout is replaced by an empty one
    p.b.step()
    assert p.status(wid) == "broadcast" and "reorged out" in p.steps(wid)
    for _ in range(3):
        p.b.step()  # sent again (anvil mines it), then followed
        dev_chain.mine(1)
    p.b.step()
    assert p.status(wid) == "completed"
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 3_000 * USDT
    assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 0)


def test_a_broadcaster_restarted_mid_way_picks_up_where_it_was(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store)
    p.fund(ACCOUNT, 5_000 * USDT)
    first, second = p.request(ACCOUNT, 1_000 * USDT), p.request(ACCOUNT, 2_000 * USDT)
    p.b.step()
    p.human(first, 3)
    p.human(second, 4)
    dev_chain.rpc.call("evm_setAutomine", [False])
    p.b.step()  # both sent, neither mined
    assert p.status(first) == p.status(second) == "broadcast"
    nonces = sorted(t.nonce for w in (first, second) for t in store.txs(w))
    assert nonces[1] == nonces[0] + 1  # one nonce each
    dev_chain.rpc.call("evm_setAutomine", [True])
    dev_chain.mine(1)
    again = Pipeline(dev_chain, node, store)  # a new process: only what the database holds
    for _ in range(2):
        again.b.step()
        dev_chain.mine(1)
    again.b.step()
    assert again.status(first) == again.status(second) == "completed"
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 3_000 * USDT
    assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 0)
    assert len(store.txs(first)) == len(store.txs(second)) == 1  # nothing sent twice


def test_a_signed_withdrawal_someone_else_sends_completes_once_at_depth(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store)
    p.fund(ACCOUNT, 5_000 * USDT)
    wid = p.request(ACCOUNT, 3_000 * USDT)
    p.b.step()
    p.human(wid, 3)
    w = store.get(wid)
    assert w is not None
    data = encode_call(WITHDRAW, w.terms().as_tuple(),
                       [bytes.fromhex(x[2:]) for x in ordered(p.b.valid_signatures(w))])
    dev_chain.mined(dev_chain.rpc.send_transaction({"from": dev_chain.accounts[9], "to": dev_chain.vault,
                                                    "data": data, "gas": hex(400_000)}))
    p.b.step()  # 3/3, but the vault already paid it: nothing is sent, and not yet deep enough
    assert p.status(wid) == "signed" and store.txs(wid) == []
    dev_chain.mine(2)
    p.b.step()
    assert p.status(wid) == "completed"
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 3_000 * USDT
    assert usdt_of(node, ACCOUNT) == (2_000 * USDT, 0)


# ---------------------------------------------------------------------- the vault refuses


def _terms(dev: DevChain, **change: Any) -> Terms:
    t = Terms("0x" + secrets.token_bytes(32).hex(), ACCOUNT, dev.usdt, DEST, 100 * USDT,
              chain_time(dev.rpc) + 3600, CHAIN_ID, dev.vault)
    return replace(t, **change)


def _revert(p: Pipeline, terms: Terms, sigs: list[str]) -> str:
    data = encode_call(WITHDRAW, terms.as_tuple(), [bytes.fromhex(s[2:]) for s in sigs])
    with pytest.raises(RpcError) as err:
        p.dev.rpc.call("eth_estimateGas", [{"from": p.dev.accounts[0], "to": p.dev.vault, "data": data}])
    return p.b.revert_reason(err.value)


def _sigs(terms: Terms, *indexes: int) -> list[str]:
    return ordered({dev_key(i).address.lower(): sign(terms, dev_key(i)) for i in indexes})


# A signature over other terms recovers to an unrelated address: the vault refuses it as not a
# signer, or as out of order when that address sorts before the previous signer's.
FOREIGN = ("NotASigner", "SignersNotAscending")


@pytest.mark.parametrize("case, expected", [
    ("two signatures", ("WrongSignatureCount",)),
    ("another withdrawal's signature", FOREIGN),
    ("signed for another vault", FOREIGN),
    ("signed for another chain", FOREIGN),
    ("a non-signer's signature", ("NotASigner",)),
    ("the same signer twice", ("SignersNotAscending",)),
    ("an expired deadline", ("Expired",)),
])
def test_the_vault_refuses(case: str, expected: tuple[str, ...], dev_chain: DevChain, node: Node,
                           store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store)
    dev_chain.deposit_token(dev_chain.usdt, ACCOUNT, 1_000 * USDT)
    t = _terms(dev_chain)
    if case == "two signatures":
        sigs = _sigs(t, 1, 2)
    elif case == "another withdrawal's signature":
        other = _terms(dev_chain)
        sigs = ordered({**dict(zip([dev_key(i).address.lower() for i in (1, 2)], _sigs(t, 1, 2), strict=True)),
                        dev_key(3).address.lower(): sign(other, dev_key(3))})
    elif case == "signed for another vault":
        sigs = _sigs(replace(t, vault="0x" + "11" * 20), 1, 2, 3)
    elif case == "signed for another chain":
        sigs = _sigs(replace(t, chain_id=1), 1, 2, 3)
    elif case == "a non-signer's signature":
        sigs = _sigs(t, 1, 2, 7)
    elif case == "the same signer twice":
        one = sign(t, dev_key(1))
        sigs = [one, one, sign(t, dev_key(2))]
    else:
        t = replace(t, deadline=chain_time(dev_chain.rpc) - 1)
        sigs = _sigs(t, 1, 2, 3)
    assert _revert(p, t, sigs) in expected
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 0


def test_a_withdrawal_id_pays_once_and_a_queued_one_not_before_its_time(
        dev_chain: DevChain, node: Node, store: WithdrawalStore) -> None:
    p = Pipeline(dev_chain, node, store)
    dev_chain.deposit_token(dev_chain.usdt, ACCOUNT, 1_000 * USDT)
    t = _terms(dev_chain)
    assert recover(t, sign(t, dev_key(1))) == dev_key(1).address.lower()
    (digest,) = decode(["bytes32"], dev_chain.rpc.eth_call(dev_chain.vault, encode_call(
        "withdrawalDigest((bytes32,uint64,address,address,uint256,uint256))", t.as_tuple())))
    assert digest == t.digest()  # the digest signers sign is the vault's
    data = encode_call(WITHDRAW, t.as_tuple(), [bytes.fromhex(s[2:]) for s in _sigs(t, 1, 2, 3)])
    dev_chain.mined(dev_chain.rpc.send_transaction({"from": dev_chain.accounts[0], "to": dev_chain.vault,
                                                    "data": data, "gas": hex(400_000)}))
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 100 * USDT
    assert _revert(p, t, _sigs(t, 1, 2, 3)) == "AlreadyUsed"
    assert _revert(p, t, _sigs(t, 3, 4, 5)) == "AlreadyUsed"

    vault = _vault_with_threshold(dev_chain, 10 * USDT)
    dev_chain.vault = vault
    p2 = Pipeline(dev_chain, node, store, vault=vault)
    dev_chain.deposit_token(dev_chain.usdt, ACCOUNT, 1_000 * USDT)
    big = _terms(dev_chain)
    data = encode_call(WITHDRAW, big.as_tuple(), [bytes.fromhex(s[2:]) for s in _sigs(big, 1, 2, 3)])
    dev_chain.mined(dev_chain.rpc.send_transaction({"from": dev_chain.accounts[0], "to": vault, "data": data,
                                                    "gas": hex(400_000)}))
    execute = encode_call("executeQueued(bytes32)", bytes.fromhex(big.id[2:]))
    with pytest.raises(RpcError) as err:
        dev_chain.rpc.call("eth_estimateGas", [{"from": dev_chain.accounts[0], "to": vault, "data": execute}])
    assert p2.b.revert_reason(err.value) == "TimelockActive"
    assert token_balance(dev_chain.rpc, dev_chain.usdt, DEST) == 100 * USDT
