"""The withdrawal pipeline of one chain: policy signers, then the broadcaster, then the engine.

Each ``step`` moves every open withdrawal of the chain as far as it can go (see the states in
0010_withdrawals.sql):

- ``signing``: the two policy signers review it (``Policy``) and sign or decline; human signers add
  theirs with ``dpg signer sign``. Signatures are recovered and must be the vault's current signers;
  at 3 it is ``signed``. A human rejection fails it while fewer than 3 signatures exist.
- ``signed``: ``withdraw(w, signatures)`` is estimated first (a revert costs nothing and is retried
  at the next step, its reason shown), then signed with the broadcaster's key and sent with EIP-1559
  fees; the nonce is the account's pending count.
- ``broadcast``: a transaction not mined after ``replace_after`` seconds is replaced by one with the
  same nonce and fees raised by a quarter; whichever of them is mined counts.
- ``confirming``: followed to the chain's depth (a receipt that disappears, or whose block is no
  longer canonical, was reorged out: the transaction is sent again); then the vault's
  ``WithdrawalExecuted`` completes it (``CompleteWithdrawal``: the engine debits the locked funds),
  or ``WithdrawalQueued`` makes it ``queued``; a reverted transaction goes back to be retried.
- ``queued``: time-locked by the vault; once the chain's time passes ``executable_at`` the
  broadcaster sends ``executeQueued(id)``. Cancelled on the chain by a signer or the guardian, or
  invalidated by the vault because a signer who approved it has left the signer set: failed.
- ``cancelling``: the user cancelled it (``DELETE /api/v1/withdrawals/{id}``) before its third
  signature; the API returns the funds at once, and the pipeline finishes what an API process that
  stopped half-way left.

A withdrawal fails (``FailWithdrawal``: the funds return to the user) only when it can never be
paid: its signed deadline has passed in a block as deep as the chain's confirmation depth while the
vault had not executed or queued its id by then (every later block is later still, whatever a
shallower reorg puts there), the vault cancelled it, or the user cancelled it before it could be
signed. So an unlock can never meet a payout of the same funds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eth_abi.abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from dpg.chain import escape
from dpg.chain.config import ASSET_DECIMALS, NATIVE, ChainConfig
from dpg.chain.contracts import encode_call, load_artifact, selector
from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable, to_int
from dpg.chain.signer import Keys, checksum, ordered, sign, valid
from dpg.chain.withdrawals import CANCELLED_BY_USER, SentTx, Withdrawal, WithdrawalClosed, WithdrawalStore
from dpg.chain.worker import ChainWorker
from dpg.core import events as E
from dpg.core.commands import CompleteWithdrawal, FailWithdrawal
from dpg.core.errors import Reject
from dpg.core.events import Event

log = logging.getLogger("dpg.chain.broadcaster")

Submit = Callable[[Any], tuple[int, list[Event]]]

THRESHOLD = 3
WITHDRAW = "withdraw((bytes32,uint64,address,address,uint256,uint256),bytes[])"
EXECUTE = "executeQueued(bytes32)"
EXECUTED_TOPIC = "0x" + keccak(text="WithdrawalExecuted(bytes32,uint64,address,address,uint256)").hex()
QUEUED_TOPIC = "0x" + keccak(text="WithdrawalQueued(bytes32,uint256)").hex()
INVALIDATED_TOPIC = "0x" + keccak(text="WithdrawalInvalidated(bytes32,address)").hex()
QUEUED_FIELDS = ["address", "uint64", "uint32", "address", "uint64", "uint8", "uint256"]  # Vault.queued(id)
STATUS_NONE, STATUS_QUEUED, STATUS_EXECUTED, STATUS_CANCELLED = 0, 1, 2, 3


_SENDERS: dict[tuple[int, str], threading.Lock] = {}
_SENDERS_LOCK = threading.Lock()


def sending(chain_id: int, sender: str) -> threading.Lock:
    """Held from reading a sender's nonce to handing its transaction to the node: the broadcaster
    and the deposit-address sweeper of a chain share the broadcaster key, and must never take one
    nonce twice."""
    with _SENDERS_LOCK:
        return _SENDERS.setdefault((chain_id, sender.lower()), threading.Lock())


def vault_signers(rpc: Rpc, vault: str) -> list[str]:
    """The vault's five current signers, lower-case."""
    (addrs,) = decode(["address[5]"], rpc.eth_call(vault, encode_call("signers()")))
    return [str(a).lower() for a in addrs]


def fees(rpc: Rpc) -> tuple[int, int]:
    """(priority fee, max fee per gas) for an EIP-1559 transaction now: the node's tip, and twice
    the latest base fee plus the tip."""
    latest = rpc.call("eth_getBlockByNumber", ["latest", False])
    base = to_int(latest.get("baseFeePerGas", "0x0"))
    try:
        tip = to_int(rpc.call("eth_maxPriorityFeePerGas"))
    except RpcError:
        tip = 1_000_000_000
    return tip, 2 * base + tip


def sign_tx(key: LocalAccount, chain_id: int, to: str, data: str, nonce: int, gas: int, tip: int,
            max_fee: int) -> tuple[str, str]:
    """An EIP-1559 call of ``to`` signed by ``key``: (raw transaction, its hash), both 0x hex."""
    tx_fields: dict[str, Any] = {
        "type": 2, "chainId": chain_id, "nonce": nonce, "to": checksum(to), "value": 0, "data": data, "gas": gas,
        "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip,
    }
    signed = key.sign_transaction(tx_fields)
    return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()


def send_raw(rpc: Rpc, raw: str) -> None:
    """``eth_sendRawTransaction``; a node that has it already (or mined that nonce) is no error:
    receipts tell what became of it."""
    try:
        rpc.call("eth_sendRawTransaction", [raw])
    except RpcError as e:
        text = e.message.lower()
        if "already" in text or "known" in text or "nonce too low" in text:
            return
        raise


def _whole(asset: str, n: int) -> int:
    """``n`` whole units of ``asset`` in base units."""
    return n * int(10 ** ASSET_DECIMALS[asset])


@dataclass(frozen=True)
class Policy:
    """What the automated signers sign without a person: at most ``auto_limit`` per withdrawal and
    ``velocity`` per account and asset in 24 hours (base units), to an allow-listed address that is
    neither the vault nor a token contract, with a deadline at most ``max_ttl`` seconds away."""

    auto_limit: Mapping[str, int] = field(default_factory=lambda: {
        "BTC": _whole("BTC", 2), "ETH": _whole("ETH", 50), "USDT": _whole("USDT", 100000)})
    velocity: Mapping[str, int] = field(default_factory=lambda: {
        "BTC": _whole("BTC", 5), "ETH": _whole("ETH", 120), "USDT": _whole("USDT", 250000)})
    max_ttl: int = 7 * 86400

    def review(self, w: Withdrawal, store: WithdrawalStore, chain: ChainConfig, now: float) -> str | None:
        """None when the policy signs ``w``; else why not."""
        limit = self.auto_limit.get(w.asset, 0)
        if w.amount > limit:
            return f"amount {w.amount} above the automatic limit {limit} of {w.asset}"
        outflow = store.outflow(w.account, w.asset)
        if outflow > self.velocity.get(w.asset, 0):
            return f"24 h outflow {outflow} of {w.asset} above the velocity limit {self.velocity.get(w.asset, 0)}"
        if not store.allowed(w.account, w.chain, w.to_address):
            return "the destination is not on the account's allow-list"
        token = chain.token_at(w.to_address)
        if w.to_address == chain.vault or (token is not None and token.address != NATIVE):
            return "the destination is the vault or a token contract"
        if w.deadline > now + self.max_ttl:
            return "the deadline is too far away"
        if w.vault != chain.vault or w.chain_id != chain.chain_id:
            return "the withdrawal names another vault or chain"
        return None


class Broadcaster(ChainWorker):
    role = "broadcaster"

    def __init__(self, chain: ChainConfig, rpc: Rpc, store: WithdrawalStore, submit: Submit, keys: Keys,
                 policy: Policy | None = None, *, replace_after: float = 30.0, request_grace: float = 30.0,
                 gas_limit: int = 400_000) -> None:
        self.chain = chain
        self.rpc = rpc
        self.store = store
        self.submit = submit
        self.keys = keys
        self.policy = policy or Policy()
        self.replace_after = replace_after
        self.request_grace = request_grace
        self.gas_limit = gas_limit
        self._signers: list[str] = []
        self._errors = _error_names()
        super().__init__()

    # ------------------------------------------------------------------ chain reads

    def signers(self) -> list[str]:
        """The vault's current signers (read once per ``step``: a signer change applies at the next)."""
        if not self._signers:
            self._signers = vault_signers(self.rpc, self.chain.vault)
        return self._signers

    def vault_status(self, wid: str, block: str = "latest") -> int:
        (s,) = decode(["uint8"], self.rpc.eth_call(self.chain.vault, encode_call("status(bytes32)",
                                                                                bytes.fromhex(wid[2:])), block))
        return int(s)

    def confirmed_status(self, wid: str, depth: int) -> int:
        """The vault's status of ``wid`` at the block ``depth`` confirmations deep."""
        block = max(0, self.rpc.block_number() - depth + 1)
        return self.vault_status(wid, hex(block))

    def chain_time(self) -> int:
        b = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return to_int(b["timestamp"])

    def expired(self, w: Withdrawal) -> bool:
        """Whether ``w`` can never be paid for its deadline: the block ``w.required`` confirmations
        deep is past the signed deadline and the vault had not paid or queued ``w`` by then. Judged
        by the latest block instead, a reorg could bring back a block in time that pays it after it
        was failed and its funds returned."""
        number = max(0, self.rpc.block_number() - w.required + 1)
        block = self.rpc.block(number)
        if block is None or to_int(block["timestamp"]) <= w.deadline:
            return False
        return self.vault_status(w.id, hex(number)) == STATUS_NONE

    def revert_reason(self, err: RpcError) -> str:
        data = err.data or ""
        if data.startswith("0x") and len(data) >= 10:
            name = self._errors.get(data[:10].lower())
            if name:
                return name
        return err.message

    # ------------------------------------------------------------------ the pipeline

    def step(self) -> None:
        """Move every open withdrawal of this chain one or more states on."""
        now = self.chain_time()
        self._signers = []  # read again: the signers may have changed
        for w in self.store.open(self.chain.name):
            try:
                self._advance(w, now)
            except RpcError as e:
                log.warning("event=withdrawal_step_failed id=%s status=%s error=%r", w.id, w.status, str(e))

    def _advance(self, w: Withdrawal, now: int) -> None:
        if w.status == "requesting":
            self._unconfirmed_request(w)
        elif w.status == "signing":
            self._collect(w, now)
        elif w.status == "signed":
            self._send(w, now, "withdraw")
        elif w.status == "broadcast":
            self._follow_sent(w)
        elif w.status == "confirming":
            self._confirm(w)
        elif w.status == "queued":
            self._queued(w, now)
        elif w.status == "cancelling":
            self._cancelling(w)

    def _unconfirmed_request(self, w: Withdrawal) -> None:
        age = (datetime.now(UTC) - w.created_at).total_seconds()
        if age > self.request_grace:
            # the API wrote the row and died before the engine answered; unlock whatever was locked
            self._fail(w, "the request was not confirmed")

    def _cancelling(self, w: Withdrawal) -> None:
        age = (datetime.now(UTC) - w.updated_at).total_seconds()
        if age > self.request_grace:
            # the API (or the forced server) marked it cancelled and stopped before the engine returned the funds
            self._fail(w, w.reason or CANCELLED_BY_USER)

    def _collect(self, w: Withdrawal, now: int) -> None:
        if now > w.deadline:
            if self.expired(w):
                self._fail(w, "expired before it had 3 signatures")
            return  # past it at the head: failed once a block at the confirmation depth is past it too
        reviews = self.store.reviews(w.id)
        rejected = [f"{s}: {r}" for s, (d, r) in reviews.items() if d == "rejected"]
        valid = self.valid_signatures(w)
        if rejected and len(valid) < THRESHOLD:
            self._fail(w, f"rejected by a signer ({rejected[0]})")
            return
        for key in self.keys.policy:
            who = key.address.lower()
            if who in valid or who in reviews or who not in self.signers():
                continue
            reason = self.review(w)
            if reason is None:
                try:
                    self.store.add_signature(w.id, who, sign(w.terms(), key), "policy")
                except WithdrawalClosed:
                    return  # cancelled by the user meanwhile
                valid[who] = ""
            else:
                self.store.add_review(w.id, who, "declined", reason)
                log.info("event=withdrawal_declined id=%s signer=%s reason=%r", w.id, who, reason)
        if len(valid) >= THRESHOLD:
            if not self.store.update(w.id, "signed", f"{len(valid)} signatures", expect="signing", status="signed"):
                return
            w = self.store.get(w.id) or w
            self._send(w, now, "withdraw")

    def review(self, w: Withdrawal) -> str | None:
        """None when the policy signers sign ``w``; else why not. A forced withdrawal (the vault's
        escape hatch, dpg.chain.forced) is signed whatever the limits and the allow-list, while the
        vault has its request open for this account and token, to the request's exit address."""
        request = self.store.forced_request(w.id)
        if request is None:
            return self.policy.review(w, self.store, self.chain, time.time())
        onchain = escape.forced_request(self.rpc, self.chain.vault, request)
        if onchain.requested_at == 0 or onchain.served:
            return f"the vault has no open forced withdrawal request {request}"
        if (onchain.account, onchain.token, onchain.exit_address) != (w.account, w.token, w.to_address):
            return "the withdrawal is not the forced withdrawal's account, token and exit address"
        if w.vault != self.chain.vault or w.chain_id != self.chain.chain_id:
            return "the withdrawal names another vault or chain"
        return None

    def valid_signatures(self, w: Withdrawal) -> dict[str, str]:
        """The stored signatures that recover to a current signer of the vault."""
        return valid(w.terms(), self.store.signatures(w.id), set(self.signers()))

    def _calldata(self, w: Withdrawal, purpose: str) -> str:
        if purpose == "execute":
            return encode_call(EXECUTE, bytes.fromhex(w.id[2:]))
        sigs = self.valid_signatures(w)
        chosen = dict(sorted(sigs.items(), key=lambda kv: int(kv[0], 16))[:5])
        return encode_call(WITHDRAW, w.terms().as_tuple(), [bytes.fromhex(s[2:]) for s in ordered(chosen)])

    def _send(self, w: Withdrawal, now: int, purpose: str) -> None:
        if purpose == "withdraw":
            status = self.vault_status(w.id)
            if status != STATUS_NONE:
                # someone else sent the signed withdrawal (its calldata is public once broadcast)
                self._settled_elsewhere(w, status)
                return
            if now > w.deadline:
                if self.expired(w):
                    self._fail(w, "expired: the deadline passed before the vault paid it")
                return  # past it at the head: failed once a block at the confirmation depth is past it too
        data = self._calldata(w, purpose)
        sender = self.keys.broadcaster.address
        try:
            gas = to_int(self.rpc.call("eth_estimateGas", [{"from": sender, "to": self.chain.vault, "data": data}]))
        except RpcError as e:
            reason = self.revert_reason(e)
            if reason != w.reason:
                self.store.update(w.id, "retry", reason, reason=reason)
            log.info("event=withdrawal_would_revert id=%s reason=%s", w.id, reason)
            return
        with sending(self.chain.chain_id, sender):
            nonce = to_int(self.rpc.call("eth_getTransactionCount", [sender, "pending"]))
            tip, max_fee = self._fees()
            tx = self._sign_and_send(w, purpose, data, nonce, max(gas * 5 // 4, 60_000), tip, max_fee)
        self.store.update(w.id, "broadcast", f"{tx.tx_hash} nonce {nonce}", status="broadcast", tx_hash=tx.tx_hash,
                          reason=None)

    def _fees(self) -> tuple[int, int]:
        return fees(self.rpc)

    def _sign_and_send(self, w: Withdrawal, purpose: str, data: str, nonce: int, gas: int, tip: int,
                       max_fee: int) -> SentTx:
        key: LocalAccount = self.keys.broadcaster
        raw, tx_hash = sign_tx(key, self.chain.chain_id, self.chain.vault, data, nonce, gas, tip, max_fee)
        tx = SentTx(tx_hash, purpose, key.address.lower(), nonce, max_fee, tip, raw, datetime.now(UTC))
        self.store.add_tx(w.id, tx)  # recorded first: a crash after sending still knows the hash
        self._raw(raw)
        log.info("event=withdrawal_sent id=%s purpose=%s tx=%s nonce=%d max_fee=%d", w.id, purpose, tx_hash, nonce,
                 max_fee)
        return tx

    def _raw(self, raw: str) -> None:
        send_raw(self.rpc, raw)

    def _follow_sent(self, w: Withdrawal) -> None:
        sent = self.store.txs(w.id)
        current = next((t for t in sent if t.tx_hash == w.tx_hash), None)
        txs = [t for t in sent if current is not None and t.nonce == current.nonce and t.purpose == current.purpose]
        for t in reversed(txs):
            r = self.rpc.receipt(t.tx_hash)
            if r is not None and r.get("blockNumber"):
                self.store.update(w.id, "mined", f"{t.tx_hash} in block {to_int(r['blockNumber'])}",
                                  status="confirming", tx_hash=t.tx_hash, block_number=to_int(r["blockNumber"]),
                                  confirmations=max(0, self.rpc.block_number() - to_int(r["blockNumber"]) + 1))
                w2 = self.store.get(w.id)
                if w2 is not None:
                    self._confirm(w2)
                return
        if not txs:
            self.store.update(w.id, status="signed")
            return
        last = txs[-1]
        mined_nonce = to_int(self.rpc.call("eth_getTransactionCount", [last.sender, "latest"]))
        if mined_nonce > last.nonce:
            # the nonce was used by a transaction that is not one of these: send again
            back = "queued" if last.purpose == "execute" else "signed"
            self.store.update(w.id, "nonce used elsewhere", f"nonce {last.nonce}", status=back)
            return
        age = (datetime.now(UTC) - last.sent_at).total_seconds()
        if age > self.replace_after:
            tip, max_fee = self._fees()
            tip = max(tip, last.priority_fee * 5 // 4 + 1)
            max_fee = max(max_fee, last.max_fee * 5 // 4 + 1, tip)
            data = self._calldata(w, last.purpose)
            tx = self._sign_and_send(w, last.purpose, data, last.nonce, self.gas_limit, tip, max_fee)
            self.store.update(w.id, "replaced", f"{last.tx_hash} by {tx.tx_hash} (max fee {max_fee})",
                              tx_hash=tx.tx_hash)
        else:
            self._raw(last.raw)  # a node that lost it (restart, reorg) gets it again

    def _confirm(self, w: Withdrawal) -> None:
        assert w.tx_hash is not None
        r = self.rpc.receipt(w.tx_hash)
        canonical = r is not None and r.get("blockNumber") and \
            self.rpc.block_hash(to_int(r["blockNumber"])) == str(r.get("blockHash", "")).lower()
        if r is None or not canonical:
            self.store.update(w.id, "reorged out", w.tx_hash, status="broadcast", block_number=None, confirmations=0)
            return
        block = to_int(r["blockNumber"])
        confirmations = self.rpc.block_number() - block + 1
        if confirmations != w.confirmations or block != w.block_number:
            self.store.update(w.id, confirmations=confirmations, block_number=block)
        if confirmations < w.required:
            return
        purpose = next((t.purpose for t in self.store.txs(w.id) if t.tx_hash == w.tx_hash), "withdraw")
        if to_int(r["status"]) != 1:
            back = "queued" if purpose == "execute" else "signed"
            self.store.update(w.id, "reverted", w.tx_hash, status=back, reason="the transaction reverted")
            return
        wid = w.id.lower()
        for lg in r.get("logs", []):
            if str(lg.get("address", "")).lower() != self.chain.vault:
                continue
            topics = [str(t).lower() for t in lg.get("topics", [])]
            data = bytes.fromhex(str(lg.get("data", "0x"))[2:])
            if topics and topics[0] == EXECUTED_TOPIC and len(data) >= 32 and "0x" + data[:32].hex() == wid:
                self._complete(w, f"{self.chain.name}:{w.tx_hash}", confirmations)
                return
            if topics and topics[0] == QUEUED_TOPIC and len(data) >= 64 and "0x" + data[:32].hex() == wid:
                (executable_at,) = decode(["uint256"], data[32:64])
                self.store.update(w.id, "queued", f"time-locked until {int(executable_at)}", status="queued",
                                  executable_at=int(executable_at))
                return
            if topics and topics[0] == INVALIDATED_TOPIC and len(data) >= 64 and "0x" + data[:32].hex() == wid:
                (signer,) = decode(["address"], data[32:64])
                self._fail(w, _invalidated(str(signer)))
                return
        self.store.update(w.id, "no vault event", w.tx_hash, status="signed" if purpose == "withdraw" else "queued")

    def _settled_elsewhere(self, w: Withdrawal, status: int) -> None:
        """The vault executed, queued or cancelled ``w`` through a transaction not ours: follow the
        vault's state once it is as deep as the chain's confirmation depth."""
        if self.confirmed_status(w.id, w.required) != status:
            return  # not deep enough yet
        if status == STATUS_EXECUTED:
            self._complete(w, f"{self.chain.name}:executed", w.required)
        elif status == STATUS_CANCELLED:
            signer = self._invalidated_by(w)
            self._fail(w, _invalidated(signer) if signer else
                       "cancelled on the chain by a signer or the guardian, or invalidated by a signer change")
        elif status == STATUS_QUEUED:
            (_, _, _, _, executable_at, _, _) = decode(QUEUED_FIELDS, self.rpc.eth_call(
                self.chain.vault, encode_call("queued(bytes32)", bytes.fromhex(w.id[2:]))))
            self.store.update(w.id, "queued", f"time-locked until {int(executable_at)}", status="queued",
                              executable_at=int(executable_at))

    def _invalidated_by(self, w: Withdrawal) -> str | None:
        """The signer whose leaving made the vault invalidate ``w`` (its WithdrawalInvalidated log),
        or None when a signer or the guardian cancelled it. The vault's state can be seen cancelled
        before (or without) the receipt of the transaction that did it: the log is looked up, from the
        head back to the block ``w`` was last seen in, a ``max_block_range`` at a time."""
        wid = w.id.lower()
        hi = self.rpc.block_number()
        floor = w.block_number if w.block_number is not None else max(0, hi - self.chain.max_block_range + 1)
        while hi >= floor:
            lo = max(floor, hi - self.chain.max_block_range + 1)
            for lg in self.rpc.get_logs(self.chain.vault, [INVALIDATED_TOPIC], lo, hi):
                data = bytes.fromhex(str(lg.get("data", "0x"))[2:])
                if len(data) >= 64 and "0x" + data[:32].hex() == wid:
                    (signer,) = decode(["address"], data[32:64])
                    return str(signer)
            hi = lo - 1
        return None

    def _queued(self, w: Withdrawal, now: int) -> None:
        status = self.vault_status(w.id)
        if status in (STATUS_CANCELLED, STATUS_EXECUTED):
            self._settled_elsewhere(w, status)
        elif w.executable_at is not None and now >= w.executable_at:
            self._send(w, now, "execute")

    # ------------------------------------------------------------------ the engine

    def _complete(self, w: Withdrawal, reference: str, confirmations: int) -> None:
        self._settle(w, CompleteWithdrawal(w.id, reference), "completed", reference, confirmations=confirmations)

    def _fail(self, w: Withdrawal, reason: str) -> None:
        self._settle(w, FailWithdrawal(w.id, reason), "failed", reason, reason=reason)

    def _settle(self, w: Withdrawal, cmd: CompleteWithdrawal | FailWithdrawal, status: str, detail: str,
                **fields: Any) -> None:
        """The engine debits (completed) or unlocks (failed) the withdrawal's locked funds. A refusal
        because it is no longer pending means it was settled before a restart: recorded all the same."""
        seq, events = self.submit(cmd)
        first = events[0] if events else (E.REJECTED, Reject.UNAVAILABLE.value, "no events")
        settled_before = first[0] == E.REJECTED
        if settled_before and first[1] != Reject.WITHDRAWAL_NOT_FOUND.value:
            log.error("event=withdrawal_settle_refused id=%s status=%s reason=%r", w.id, status, first)
            return
        self.store.update(w.id, status, detail, status=status, done_seq=None if settled_before else seq, **fields)
        log.info("event=withdrawal_%s id=%s account=%d asset=%s amount=%d detail=%r seq=%d", status, w.id,
                 w.account, w.asset, w.amount, detail, seq)

    # ------------------------------------------------------------------ thread

    def run(self, stop: threading.Event, poll: float = 1.0) -> None:
        delay = poll
        while not stop.is_set():
            try:
                self.step()
                delay = poll
            except (RpcUnavailable, RpcError, OSError) as e:
                log.warning("event=broadcaster_retry chain=%s error=%r in=%.1fs", self.chain.name, str(e), delay)
                delay = min(delay * 2, 30.0)
            except Exception:
                log.exception("event=broadcaster_error chain=%s", self.chain.name)
                delay = min(delay * 2, 30.0)
            stop.wait(delay)


def _error_names() -> dict[str, str]:
    """The Vault's custom errors by selector, to say why a call would revert."""
    out: dict[str, str] = {}
    try:
        abi = load_artifact("Vault").abi
    except FileNotFoundError:
        return out
    for item in abi:
        if item.get("type") == "error":
            sig = f"{item['name']}({','.join(i['type'] for i in item.get('inputs', []))})"
            out["0x" + selector(sig).hex()] = item["name"]
    return out


def _invalidated(signer: str) -> str:
    return f"invalidated by the vault: {signer.lower()}, who approved it, is no longer a signer"
