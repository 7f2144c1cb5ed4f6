"""Fees to stakers: every reward period the stakers' share of the fee account moves to their reserve
(the journaled ``PayStakers``), the reserve is withdrawn to the Staking contract through the vault's
ordinary 3-of-5 withdrawal pipeline, and once that payout is final the rewards distributor notifies
it to the contract (``notifyRewardAmount``), which spreads it over its own reward period.

Each step of the ``StakerRewards`` worker:

1. when the exchange's clock has entered a new period (``DPG_STAKER_PERIOD`` seconds, aligned on
   the unix epoch), it journals ``PayStakers(USDT, "stakers:<period start>")`` (once per period:
   the engine refuses a reference twice);
2. when the reserve holds USDT and no payout of it is open, it requests a withdrawal of all of it
   to the Staking contract, as the API requests a user's (a ``withdrawals`` row, then the journaled
   ``RequestWithdrawal``), which the broadcaster signs, sends and completes like any other;
3. for each completed payout not notified yet, the distributor sends ``notifyRewardAmount(amount)``
   and the withdrawal's timeline records ``notified`` with its transaction.

The vault's signed ``account`` is a ``uint64`` and the custody tables keep positive accounts: the
reserve (engine account ``STAKERS_ACCOUNT``, -3) is written there as ``RESERVE_ACCOUNT``
(2**64 - 3, its two's complement), which no user account can be (they are 63-bit).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable

from eth_account.signers.local import LocalAccount

from dpg.chain.broadcaster import Submit, fees, send_raw, sending, sign_tx
from dpg.chain.config import ChainConfig
from dpg.chain.contracts import encode_call
from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable, to_int
from dpg.chain.withdrawals import WithdrawalStore
from dpg.chain.worker import ChainWorker
from dpg.core import events as E
from dpg.core.commands import PayStakers, RequestWithdrawal
from dpg.core.model import STAKERS_ACCOUNT

log = logging.getLogger("dpg.chain.rewards")

ASSET = "USDT"  # what stakers are paid in (the Staking contract's reward token)
RESERVE_ACCOUNT = 2**64 + STAKERS_ACCOUNT  # the reserve in the vault's uint64 account field and custody tables
NOTIFY = "notifyRewardAmount(uint256)"
NOTIFIED = "notified"  # the timeline step of a payout the contract was told of
_GAS_NOTIFY = 300_000


def period_start(now_s: int, period_s: int) -> int:
    """The start (unix seconds) of the reward period ``now_s`` is in."""
    return now_s - now_s % period_s


def period_ref(start_s: int) -> str:
    """The ``PayStakers`` reference of the period starting at ``start_s``."""
    return f"stakers:{start_s}"


class StakerRewards(ChainWorker):
    """The stakers' fee payouts on ``chain`` (the one with the governance contracts)."""

    role = "rewards"

    def __init__(self, chain: ChainConfig, rpc: Rpc, store: WithdrawalStore, submit: Submit, staking: str,
                 distributor: LocalAccount, *, now_ns: Callable[[], int], reserve: Callable[[], int],
                 period_s: int, ttl_s: int) -> None:
        """``submit``: ``node.sequencer.submit_wait``; ``now_ns``: the exchange's clock (the dev
        clock moves it); ``reserve``: the engine's available USDT of ``STAKERS_ACCOUNT``;
        ``ttl_s``: how long a payout's signatures stay valid (``DPG_WITHDRAWAL_TTL``)."""
        super().__init__()
        self.chain, self.rpc, self.store, self.submit = chain, rpc, store, submit
        self.staking = staking.lower()
        self.distributor = distributor
        self.now_ns, self.reserve = now_ns, reserve
        self.period_s, self.ttl_s = period_s, ttl_s
        token = next((t for t in chain.tokens if t.asset == ASSET), None)
        if token is None:
            raise ValueError(f"chain {chain.name}: stakers are paid in {ASSET}, which it has no token for")
        self.token = token.address.lower()
        self.paid_period = -1  # the last period start whose PayStakers was journaled (or refused as done)

    def run(self, stop: threading.Event, poll: float = 5.0) -> None:
        while not stop.is_set():
            try:
                self.step()
            except (RpcError, RpcUnavailable, OSError) as e:
                log.warning("event=staker_rewards_retry chain=%s error=%r", self.chain.name, str(e))
            stop.wait(poll)

    def stopped(self) -> None:
        self.store.close()

    def step(self) -> None:
        self.pay_period()
        self.request_payout()
        self.notify_paid()

    # ------------------------------------------------------------------ the three steps

    def pay_period(self) -> None:
        """Journal this period's PayStakers once."""
        start = period_start(self.now_ns() // 1_000_000_000, self.period_s)
        if start == self.paid_period:
            return
        _, ev = self.submit(PayStakers(ASSET, period_ref(start)))
        if ev and ev[0][0] == E.REJECTED and "DUPLICATE_REFERENCE" not in str(ev[0]):
            log.error("event=pay_stakers_refused period=%d events=%r", start, ev)
            return
        moved = next((e[3] for e in ev if e[0] == E.BALANCE and e[1] == STAKERS_ACCOUNT), 0)
        self.paid_period = start
        log.info("event=pay_stakers period=%d amount=%d", start, moved)

    def request_payout(self) -> str | None:
        """Withdraw the whole reserve to the Staking contract unless a payout of it is open; its id."""
        amount = self.reserve()
        if amount <= 0 or self._open_payout():
            return None
        c = self.chain
        wid = "0x" + secrets.token_bytes(32).hex()
        head = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        deadline = to_int(head["timestamp"]) + self.ttl_s
        self.store.create(wid, RESERVE_ACCOUNT, ASSET, amount, c, self.token, self.staking, deadline)
        seq, ev = self.submit(RequestWithdrawal(STAKERS_ACCOUNT, ASSET, amount, wid, f"{c.name}:{self.staking}"))
        if not ev or ev[0][0] == E.REJECTED:
            self.store.discard(wid)
            log.error("event=stakers_payout_refused amount=%d events=%r", amount, ev)
            return None
        self.store.update(wid, "requested", status="signing", request_seq=seq)
        log.info("event=stakers_payout_requested id=%s amount=%d to=%s seq=%d", wid, amount, self.staking, seq)
        return wid

    def notify_paid(self) -> list[str]:
        """Tell the Staking contract of every completed payout not told yet; the notifications' hashes."""
        sent = []
        for w in self.store.completed_without(RESERVE_ACCOUNT, self.chain.name, NOTIFIED):
            if w.to_address != self.staking:
                continue
            tx = self._send(encode_call(NOTIFY, w.amount))
            receipt = self.rpc.wait_receipt(tx)
            if to_int(receipt["status"]) != 1:
                log.error("event=stakers_notify_failed id=%s tx=%s", w.id, tx)
                continue
            self.store.update(w.id, NOTIFIED, tx)
            log.info("event=stakers_notified id=%s amount=%d tx=%s", w.id, w.amount, tx)
            sent.append(tx)
        return sent

    # ------------------------------------------------------------------ plumbing

    def _open_payout(self) -> bool:
        return any(w.account == RESERVE_ACCOUNT for w in self.store.open(self.chain.name))

    def _send(self, data: str) -> str:
        """Sign and send a call to the Staking contract from the distributor; its hash."""
        sender = self.distributor.address
        with sending(self.chain.chain_id, sender):  # on a dev chain the distributor is the broadcaster
            nonce = to_int(self.rpc.call("eth_getTransactionCount", [sender, "pending"]))
            tip, max_fee = fees(self.rpc)
            raw, tx = sign_tx(self.distributor, self.chain.chain_id, self.staking, data, nonce, _GAS_NOTIFY, tip,
                              max_fee)
            send_raw(self.rpc, raw)
        return tx
