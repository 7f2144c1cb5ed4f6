"""Forced withdrawals on one chain, the exchange's side of the vault's escape hatch: each
ForcedWithdrawalRequested event, once at the chain's confirmation depth, is served exactly once
through the ordinary withdrawal pipeline (table ``forced_withdrawals``, 0021_forced_withdrawals.sql).

A ``step``:

1. scans the vault's ForcedWithdrawalRequested logs after its cursor (``chain_cursors`` row
   ``<chain>/forced``) up to the block at the confirmation depth, records each request once, and moves
   the cursor;
2. serves each open request: while the vault has it open and is not frozen, the engine locks the
   account's whole available balance of the asset (``RequestForcedWithdrawal``, journaled) under a
   withdrawal id derived from the request id and the attempt, and the withdrawal (to the exit address)
   joins the pipeline: the policy signers sign it whatever the per-user limits, allow-list or 2FA
   (the broadcaster checks the vault's open request instead), a human signer adds the third
   signature, the broadcaster sends it, and the vault pays it at once (no time-lock, no daily limit)
   and marks the request served. A forced withdrawal that fails is tried again as the next attempt
   while the request is open. When nothing is available the engine refuses, and the signers sign
   ``ForcedZero(requestId, deadline)`` (the policy signers here, a human with ``dpg signer sign
   REQUEST_ID``); at 3 signatures ``answerForcedZero`` is sent. An answer whose deadline passes unsent
   is dropped and the request decided again.

A request the vault marks served otherwise (another withdrawal to the exit address, a zero answer
signed elsewhere) while its own attempt has fewer than 3 signatures and was not sent: the attempt is
cancelled and its funds return.

Restart-safe: the attempt's withdrawal id is written before the engine is asked; an engine that had
locked it before a crash answers DUPLICATE_WITHDRAWAL, and that attempt is failed (its funds return)
and the next one made. The vault serves a request once, and an id pays once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_utils.crypto import keccak

from dpg.chain import escape
from dpg.chain.broadcaster import fees, send_raw, sending, sign_tx, vault_signers
from dpg.chain.config import ChainConfig
from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable, to_int
from dpg.chain.signer import Keys, ZeroAnswer, ordered, sign, valid
from dpg.chain.store import Connected, DepositStore
from dpg.chain.watcher import MAX_RANGES_PER_POLL
from dpg.chain.withdrawals import WithdrawalStore
from dpg.chain.worker import ChainWorker
from dpg.core import events as E
from dpg.core.commands import FailWithdrawal, RequestForcedWithdrawal
from dpg.core.errors import Reject
from dpg.core.events import Event

log = logging.getLogger("dpg.chain.forced")

Submit = Callable[[Any], tuple[int, list[Event]]]

OPEN = ("seen", "withdrawing", "zero")
THRESHOLD = 3
WITHDRAWAL_TTL = 86400  # a forced withdrawal's signed deadline: a day after it is made (then the next attempt)
ANSWER_TTL = 86400
RESEND_AFTER = 30.0  # seconds before an answer not yet mined is sent again
RECOVERED = "a forced withdrawal recovered after a restart: made again"
SERVED_OTHERWISE = "the forced withdrawal request was served otherwise"


def withdrawal_id(request_id: str, attempt: int) -> str:
    """The withdrawal id of a request's attempt: the same after any restart."""
    return "0x" + keccak(b"DPG-FORCED-WITHDRAWAL" + bytes.fromhex(request_id[2:]) + attempt.to_bytes(4, "big")).hex()


@dataclass(frozen=True, slots=True)
class Forced:
    """A row of ``forced_withdrawals``."""

    request_id: str
    chain: str
    account: int
    asset: str
    token: str
    exit_address: str
    requested_at: int
    status: str
    attempt: int
    withdrawal_id: str | None
    deadline: int | None
    answer_tx: str | None
    answer_sent: datetime | None
    reason: str | None


COLUMNS = ("request_id, chain, account, asset, token, exit_address, requested_at, status, attempt, withdrawal_id,"
           " deadline, answer_tx, answer_sent, reason")


def _row(r: tuple[Any, ...]) -> Forced:
    return Forced(r[0], r[1], int(r[2]), r[3], r[4], r[5], int(r[6]), r[7], int(r[8]), r[9],
                  None if r[10] is None else int(r[10]), r[11], r[12], r[13])


class ForcedStore(Connected):
    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._c().execute(sql, params)
            return cur.fetchall() if cur.description else []

    def record(self, chain: str, asset: str, lg: escape.ForcedLog) -> bool:
        """A request seen at depth; False when it was recorded before."""
        with self._lock:
            cur = self._c().execute(
                "INSERT INTO forced_withdrawals (request_id, chain, account, asset, token, exit_address, requested_at,"
                " tx_hash, log_index, block_number) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (request_id) DO NOTHING",
                (lg.request_id, chain, lg.account, asset, lg.token, lg.exit_address, lg.requested_at, lg.tx_hash,
                 lg.log_index, lg.block_number))
            return cur.rowcount == 1

    def get(self, request_id: str) -> Forced | None:
        rows = self._q(f"SELECT {COLUMNS} FROM forced_withdrawals WHERE request_id = %s", (request_id.lower(),))
        return _row(rows[0]) if rows else None

    def open(self, chain: str) -> list[Forced]:
        return [_row(r) for r in self._q(f"SELECT {COLUMNS} FROM forced_withdrawals WHERE chain = %s"
                                         " AND status = ANY(%s) ORDER BY created_at", (chain, list(OPEN)))]

    def zero_answers(self) -> list[Forced]:
        """Requests waiting for the signatures of their zero answer."""
        return [_row(r) for r in self._q(f"SELECT {COLUMNS} FROM forced_withdrawals WHERE status = 'zero'"
                                         " ORDER BY created_at")]

    def update(self, request_id: str, **fields: Any) -> None:
        allowed = {"status", "attempt", "withdrawal_id", "deadline", "answer_tx", "answer_sent", "reason"}
        if set(fields) - allowed:
            raise ValueError(f"unknown forced withdrawal fields {sorted(set(fields) - allowed)}")
        sets = ", ".join(f"{k} = %s" for k in fields)
        self._q(f"UPDATE forced_withdrawals SET {sets}, updated_at = now() WHERE request_id = %s",
                (*fields.values(), request_id))

    def finish_cancelled(self, wid: str, seq: int | None) -> None:
        """A cancelling withdrawal whose funds the engine returned: failed."""
        with self._lock:
            conn = self._c()
            with conn.transaction():
                cur = conn.execute("UPDATE withdrawals SET status = 'failed', done_seq = coalesce(%s, done_seq),"
                                   " updated_at = now() WHERE id = %s AND status = 'cancelling' RETURNING reason",
                                   (seq, wid))
                row = cur.fetchone()
                if row is not None:
                    conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail)"
                                 " VALUES (%s, 'failed', %s)", (wid, row[0]))

    def withdrawal_status(self, wid: str) -> str | None:
        rows = self._q("SELECT status FROM withdrawals WHERE id = %s", (wid,))
        return str(rows[0][0]) if rows else None

    def add_withdrawal(self, f: Forced, wid: str, amount: int, chain: ChainConfig, deadline: int, seq: int) -> None:
        """The withdrawal row of an attempt the engine locked, ready for signatures."""
        with self._lock:
            conn = self._c()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO withdrawals (id, account, asset, amount, chain, chain_id, vault, token, to_address,"
                    " deadline, status, required, request_seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " 'signing', %s, %s) ON CONFLICT (id) DO NOTHING",
                    (wid, f.account, f.asset, amount, chain.name, chain.chain_id, chain.vault, f.token,
                     f.exit_address, deadline, chain.confirmations, seq))
                conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail) VALUES (%s, 'requested', %s)",
                             (wid, f"forced withdrawal {f.request_id} (attempt {f.attempt}), seq {seq}"))

    # ------------------------------------------------------------------ zero answers

    def signatures(self, request_id: str) -> dict[str, str]:
        return {r[0]: r[1] for r in self._q(
            "SELECT signer, signature FROM forced_zero_signatures WHERE request_id = %s", (request_id,))}

    def clear_signatures(self, request_id: str) -> None:
        self._q("DELETE FROM forced_zero_signatures WHERE request_id = %s", (request_id,))

    def add_signature(self, request_id: str, signer: str, signature: str, kind: str) -> bool:
        """A checked signature of the request's zero answer; False when this signer had signed it."""
        rows = self._q("INSERT INTO forced_zero_signatures (request_id, signer, signature, kind)"
                       " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING signer",
                       (request_id, signer.lower(), signature.lower(), kind))
        return bool(rows)


class ForcedServer(ChainWorker):
    role = "forced"

    def __init__(self, chain: ChainConfig, rpc: Rpc, store: ForcedStore, cursors: DepositStore, submit: Submit,
                 keys: Keys) -> None:
        self.chain = chain
        self.rpc = rpc
        self.store = store
        self.cursors = cursors
        self.submit = submit
        self.keys = keys
        self._signers: list[str] = []
        super().__init__()

    @property
    def cursor_name(self) -> str:
        return f"{self.chain.name}/forced"

    # ------------------------------------------------------------------ seeing requests

    def scan(self) -> list[escape.ForcedLog]:
        """Record the requests at the confirmation depth after the cursor; the new ones."""
        c = self.chain
        head = self.rpc.block_number()
        final = head - c.confirmations + 1
        stored = self.cursors.cursor(self.cursor_name)
        cursor = c.start_block - 1 if stored is None else stored[0]
        if stored is not None and stored[1] is not None and self.rpc.block_hash(cursor) != stored[1]:
            log.error("event=forced_cursor_reorged chain=%s cursor=%d action=rescan", c.name, cursor)
            cursor = c.start_block - 1  # recording is idempotent: scan again from the start
        new: list[escape.ForcedLog] = []
        ranges = 0
        while cursor < final and ranges < MAX_RANGES_PER_POLL:  # a long catch-up takes several steps
            ranges += 1
            to = min(final, cursor + c.max_block_range)
            for entry in self.rpc.get_logs(c.vault, [escape.FORCED_TOPIC], cursor + 1, to):
                lg = escape.decode_forced(entry)
                if lg is None or str(entry.get("address", "")).lower() != c.vault:
                    continue
                token = c.token_at(lg.token)
                if token is None:
                    log.warning("event=forced_unknown_token chain=%s request=%s token=%s", c.name, lg.request_id,
                                lg.token)
                    continue
                if self.store.record(c.name, token.asset, lg):
                    new.append(lg)
                    log.info("event=forced_withdrawal_seen chain=%s request=%s account=%d asset=%s exit=%s"
                             " requested_at=%d block=%d", c.name, lg.request_id, lg.account, token.asset,
                             lg.exit_address, lg.requested_at, lg.block_number)
            cursor = to
            self.cursors.save_cursor(self.cursor_name, cursor, self.rpc.block_hash(cursor))
        return new

    # ------------------------------------------------------------------ serving them

    def step(self) -> None:
        self.scan()
        self._signers = []
        for f in self.store.open(self.chain.name):
            try:
                self.serve(f)
            except RpcError as e:
                log.warning("event=forced_step_failed request=%s status=%s error=%r", f.request_id, f.status, str(e))

    def serve(self, f: Forced) -> None:
        onchain = escape.forced_request(self.rpc, self.chain.vault, f.request_id)
        if onchain.served:
            if f.status == "withdrawing" and f.withdrawal_id is not None:
                self._withdraw_unsent(f.withdrawal_id)
            self.store.update(f.request_id, status="served", reason=None)
            log.info("event=forced_withdrawal_served chain=%s request=%s account=%d asset=%s how=%s", self.chain.name,
                     f.request_id, f.account, f.asset, "zero" if f.status == "zero" else "withdrawal")
            return
        if escape.frozen(self.rpc, self.chain.vault):
            self.store.update(f.request_id, status="unserved", reason="the vault is frozen")
            log.error("event=forced_withdrawal_unserved chain=%s request=%s reason=frozen", self.chain.name,
                      f.request_id)
            return
        if f.status == "seen":
            self._lock_funds(f, withdrawal_id(f.request_id, f.attempt))
        elif f.status == "withdrawing":
            assert f.withdrawal_id is not None
            status = self.store.withdrawal_status(f.withdrawal_id)
            if status is None:  # stopped between the id and the row: ask the engine again
                self._lock_funds(f, f.withdrawal_id)
            elif status == "failed":
                self.store.update(f.request_id, status="seen", attempt=f.attempt + 1, withdrawal_id=None)
                log.warning("event=forced_withdrawal_retry request=%s attempt=%d", f.request_id, f.attempt + 1)
        elif f.status == "zero":
            self._answer_zero(f)

    def _withdraw_unsent(self, wid: str) -> None:
        """The request was served otherwise (another withdrawal to the exit address, a zero answer):
        its own attempt, not yet signed 3 times nor sent, is cancelled and its funds return."""
        wstore = WithdrawalStore(self.store.url)
        try:
            if not wstore.cancel(wid, SERVED_OTHERWISE):
                return  # signed or sent: the vault pays it as an ordinary withdrawal, or it fails at its deadline
        finally:
            wstore.close()
        seq, events = self.submit(FailWithdrawal(wid, SERVED_OTHERWISE))
        first = events[0] if events else (E.REJECTED, Reject.UNAVAILABLE.value, "no events")
        if first[0] != E.REJECTED or first[1] == Reject.WITHDRAWAL_NOT_FOUND.value:
            self.store.finish_cancelled(wid, None if first[0] == E.REJECTED else seq)
        log.info("event=forced_withdrawal_withdrawn id=%s reason=%r", wid, SERVED_OTHERWISE)

    def _lock_funds(self, f: Forced, wid: str) -> None:
        self.store.update(f.request_id, status="withdrawing", withdrawal_id=wid)
        dest = f"{self.chain.name}:{f.exit_address}:{f.request_id}"
        seq, events = self.submit(RequestForcedWithdrawal(f.account, f.asset, wid, dest))
        first = events[0] if events else (E.REJECTED, Reject.UNAVAILABLE.value, "no events")
        if first[0] == E.WITHDRAWAL_REQUESTED:
            amount = int(first[4])
            deadline = self._chain_time() + WITHDRAWAL_TTL
            self.store.add_withdrawal(f, wid, amount, self.chain, deadline, seq)
            log.info("event=forced_withdrawal_requested request=%s id=%s account=%d asset=%s amount=%d to=%s seq=%d",
                     f.request_id, wid, f.account, f.asset, amount, f.exit_address, seq)
            return
        code = first[1]
        if code == Reject.UNAVAILABLE.value:
            self.store.update(f.request_id, status="seen", withdrawal_id=None)
            raise RpcUnavailable(f"the engine did not take the forced withdrawal {wid}: {first[2]}")
        if code == Reject.DUPLICATE_WITHDRAWAL.value:
            # locked before a restart, its row never written: return those funds and make the next attempt
            self.submit(FailWithdrawal(wid, RECOVERED))
            self.store.update(f.request_id, status="seen", attempt=f.attempt + 1, withdrawal_id=None)
            return
        if code == Reject.INSUFFICIENT_FUNDS.value:
            self.store.update(f.request_id, status="zero", withdrawal_id=None,
                              deadline=self._chain_time() + ANSWER_TTL, reason=str(first[2]))
            log.info("event=forced_withdrawal_zero request=%s account=%d asset=%s", f.request_id, f.account, f.asset)
            fresh = self.store.get(f.request_id)
            if fresh is not None:
                self._answer_zero(fresh)
            return
        self.store.update(f.request_id, status="unserved", withdrawal_id=None, reason=f"{code}: {first[2]}")
        log.error("event=forced_withdrawal_refused request=%s account=%d asset=%s reason=%r", f.request_id,
                  f.account, f.asset, f"{code}: {first[2]}")

    # ------------------------------------------------------------------ the zero answer

    def signers(self) -> list[str]:
        if not self._signers:
            self._signers = vault_signers(self.rpc, self.chain.vault)
        return self._signers

    def answer(self, f: Forced) -> ZeroAnswer:
        assert f.deadline is not None
        return ZeroAnswer(f.request_id, f.deadline, self.chain.chain_id, self.chain.vault)

    def valid_signatures(self, f: Forced) -> dict[str, str]:
        return valid(self.answer(f), self.store.signatures(f.request_id), set(self.signers()))

    def _answer_zero(self, f: Forced) -> None:
        if f.deadline is not None and self._chain_time() > f.deadline:
            # the signed answer can no longer be sent: decide again (the account may hold funds by now)
            self.store.clear_signatures(f.request_id)
            self.store.update(f.request_id, status="seen", deadline=None, answer_tx=None, answer_sent=None,
                              reason="the zero answer's deadline passed before it was sent")
            log.warning("event=forced_zero_expired request=%s", f.request_id)
            return
        valid = self.valid_signatures(f)
        for key in self.keys.policy:
            who = key.address.lower()
            if who not in valid and who in self.signers():
                sig = sign(self.answer(f), key)
                self.store.add_signature(f.request_id, who, sig, "policy")
                valid[who] = sig
        if len(valid) < THRESHOLD:
            return
        if f.answer_tx and f.answer_sent is not None:
            r = self.rpc.receipt(f.answer_tx)
            age = (datetime.now(UTC) - f.answer_sent).total_seconds()
            if (r is None and age < RESEND_AFTER) or (r is not None and to_int(r.get("status", "0x0")) == 1):
                return  # in flight, or mined: served once the vault says so
        chosen = dict(sorted(valid.items(), key=lambda kv: int(kv[0], 16))[:THRESHOLD])
        data = escape.answer_zero_call(f.request_id, self.answer(f).deadline, ordered(chosen))
        sender = self.keys.broadcaster
        try:
            gas = to_int(self.rpc.call("eth_estimateGas", [{"from": sender.address, "to": self.chain.vault,
                                                            "data": data}]))
        except RpcError as e:
            self.store.update(f.request_id, reason=f"answerForcedZero would revert: {e.message}")
            log.warning("event=forced_zero_would_revert request=%s error=%r", f.request_id, e.message)
            return
        with sending(self.chain.chain_id, sender.address):
            nonce = to_int(self.rpc.call("eth_getTransactionCount", [sender.address, "pending"]))
            tip, max_fee = fees(self.rpc)
            raw, tx_hash = sign_tx(sender, self.chain.chain_id, self.chain.vault, data, nonce, gas * 5 // 4, tip,
                                   max_fee)
            self.store.update(f.request_id, answer_tx=tx_hash, answer_sent=datetime.now(UTC))
            send_raw(self.rpc, raw)
        log.info("event=forced_zero_sent request=%s tx=%s nonce=%d", f.request_id, tx_hash, nonce)

    def _chain_time(self) -> int:
        b = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        return to_int(b["timestamp"])

    # ------------------------------------------------------------------ thread

    def run(self, stop: threading.Event, poll: float = 1.0) -> None:
        delay = poll
        log.info("event=forced_server_started chain=%s vault=%s", self.chain.name, self.chain.vault)
        while not stop.is_set():
            try:
                self.step()
                delay = poll
            except Exception as e:
                level = logging.WARNING if isinstance(e, RpcUnavailable | RpcError | OSError) else logging.ERROR
                log.log(level, "event=forced_server_retry chain=%s error=%r in=%.1fs", self.chain.name, str(e), delay,
                        exc_info=level == logging.ERROR)
                delay = min(delay * 2, 30.0)
            stop.wait(delay)
        log.info("event=forced_server_stopped chain=%s", self.chain.name)

    def stopped(self) -> None:
        self.store.close()
        self.cursors.close()


def sign_zero(store: ForcedStore, request_id: str, key: Any, signers: list[str]) -> tuple[ZeroAnswer, str]:
    """A human signer's signature of a request's zero answer (``dpg signer sign REQUEST_ID``)."""
    f = store.get(request_id)
    if f is None or f.status != "zero" or f.deadline is None:
        raise ValueError(f"{request_id} is no forced withdrawal waiting for a zero answer")
    who = key.address.lower()
    if who not in signers:
        raise ValueError(f"{who} is not a signer of the vault")
    row = store._q("SELECT chain_id, vault FROM chains WHERE name = %s", (f.chain,))
    if not row:
        raise ValueError(f"unknown chain {f.chain}")
    answer = ZeroAnswer(f.request_id, f.deadline, int(row[0][0]), str(row[0][1]))
    sig = sign(answer, key)
    if not store.add_signature(f.request_id, who, sig, "human"):
        raise ValueError(f"{who} has signed this answer already")
    return answer, sig

