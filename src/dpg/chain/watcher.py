"""The deposit watcher of one chain: Deposit events of its vault become credits, each exactly once,
after the chain's confirmation depth.

A poll:

1. reads the head, and checks that the cursor (the last fully processed block) is still canonical;
2. asks ``eth_getLogs`` for the vault's Deposit events from the block after the cursor to the head,
   in ranges of ``max_block_range`` (halved while the node refuses a range), so every unconfirmed
   block is read again at every poll: the view of that window is always the node's current one;
3. records them in ``deposits`` (pending, with their confirmations ``head - block + 1``), marks
   orphaned the pending deposits of that window the chain no longer has, and moves a deposit
   re-included in another block to it (``(tx hash, log index)`` identifies it; duplicates and out-of
   -order logs collapse onto it);
4. credits the deposits with at least ``confirmations`` confirmations, oldest first: right before
   each, the block hash at its height must still be the log's, then ``Credit(account, asset,
   amount, ref="<chain>:<tx hash>:<log index>")`` goes to the engine through ``submit``. The engine
   refuses a reference it has credited (DUPLICATE_REFERENCE): the deposit was credited before a
   restart, and is marked so. Any other refusal marks it rejected, for an operator (one tagged with
   an account the exchange does not know, UNKNOWN_ACCOUNT, is logged as ``deposit_unattributed``;
   ``dpg wallet deposits ACCOUNT`` lists it with its reason);
5. moves the cursor to the last block whose deposits are all done (at most ``head - confirmations + 1``).

A token the chain's settings do not list is logged and skipped, never credited. ``run`` polls until
stopped; a node or database that goes away is retried with exponential back-off (logged once per
attempt), and so is a sequencer that does not answer. A chain whose block at the cursor changed was
reorganised deeper than the confirmation depth: the watcher stops crediting it and says so until an
operator acts (an embedded dev chain that was reset starts over instead).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from dpg.chain.config import ChainConfig
from dpg.chain.contracts import DEPOSIT_TOPIC, DepositLog, decode_deposit, decode_uint, encode_call
from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable
from dpg.chain.store import Deposit, DepositStore, Seen
from dpg.chain.worker import ChainWorker
from dpg.core import events as E
from dpg.core.commands import Command, Credit
from dpg.core.errors import Reject
from dpg.core.events import Event

log = logging.getLogger("dpg.chain.watcher")

Submit = Callable[[Command], tuple[int, list[Event]]]  # the sequencer's submit_wait

MAX_RANGES_PER_POLL = 50  # a poll reads at most this many block ranges; a long catch-up takes several polls


class SequencerUnavailable(Exception):
    """The engine did not take the credit (halted, stopping, or no reply in time): retry later."""


class ChainMismatch(Exception):
    """The node is not the configured chain (chain id, no vault, a token's decimals): fix the settings."""


class DeepReorg(Exception):
    """The block at the cursor is no longer canonical: a reorganisation deeper than the confirmation depth."""


def reference(chain: str, lg: DepositLog) -> str:
    """The engine reference of a deposit: credited at most once."""
    return f"{chain}:{lg.tx_hash}:{lg.log_index}"


@dataclass(frozen=True, slots=True)
class PollResult:
    head: int
    cursor: int
    credited: list[tuple[str, int]] = field(default_factory=list)
    rejected: list[tuple[str, int]] = field(default_factory=list)
    changed: list[Deposit] = field(default_factory=list)  # new, orphaned or moved in this poll


class DepositWatcher(ChainWorker):
    role = "chain"

    def __init__(
        self,
        chain: ChainConfig,
        rpc: Rpc,
        store: DepositStore,
        submit: Submit,
        *,
        reset_on_mismatch: bool = False,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        """``reset_on_mismatch``: a chain whose block at the cursor changed starts over from its
        start block (for an embedded dev chain whose state was removed) instead of halting."""
        self.chain = chain
        self.rpc = rpc
        self.store = store
        self.submit = submit
        self.reset_on_mismatch = reset_on_mismatch
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._range = chain.max_block_range
        self._checked = False
        self._skipped: set[tuple[str, int]] = set()
        super().__init__()

    # ------------------------------------------------------------------ one poll

    def check_chain(self) -> None:
        """The node is the configured chain: its chain id, code at the vault, each token's decimals."""
        c = self.chain
        chain_id = self.rpc.chain_id()
        if chain_id != c.chain_id:
            raise ChainMismatch(f"chain {c.name}: the node's chain id is {chain_id}, configured {c.chain_id}")
        if not self.rpc.code(c.vault):
            raise ChainMismatch(f"chain {c.name}: no contract at the vault address {c.vault}")
        for t in c.tokens:
            try:
                decimals = decode_uint(self.rpc.eth_call(t.address, encode_call("decimals()")))
            except (RpcError, ValueError) as e:
                raise ChainMismatch(
                    f"chain {c.name}: token {t.symbol} at {t.address}: decimals() failed: {e}"
                ) from None
            if decimals != t.decimals:
                raise ChainMismatch(
                    f"chain {c.name}: token {t.symbol} at {t.address} has {decimals} decimals, configured {t.decimals}"
                )
        self._checked = True
        log.info("event=chain_checked chain=%s chain_id=%d vault=%s tokens=%d confirmations=%d",
                 c.name, chain_id, c.vault, len(c.tokens), c.confirmations)

    def _logs(self, frm: int, to: int) -> tuple[list[DepositLog], int]:
        """Deposit logs of the vault in blocks frm..to, and the last block read: the range is halved
        while the node refuses it."""
        while True:
            try:
                raw = self.rpc.get_logs(self.chain.vault, [DEPOSIT_TOPIC], frm, to)
                break
            except RpcError as e:
                if to <= frm:
                    raise
                self._range = max(1, (to - frm + 1) // 2)
                to = frm + self._range - 1
                log.warning("event=logs_range_refused chain=%s error=%r new_range=%d", self.chain.name, e.message,
                            self._range)
        out = []
        for entry in raw:
            lg = decode_deposit(entry)
            if lg is None or lg.removed or not frm <= lg.block_number <= to:
                continue
            if str(entry.get("address", "")).lower() != self.chain.vault:
                continue
            out.append(lg)
        return out, to

    def _scan(self, frm: int, head: int) -> tuple[dict[tuple[str, int], Seen], int]:
        """The canonical deposits from ``frm`` up to the head (or as far as one poll reads), and the last
        block read."""
        seen: dict[tuple[str, int], Seen] = {}
        ranges = 0
        to = frm - 1
        while to < head and ranges < MAX_RANGES_PER_POLL:
            start = to + 1
            end = min(head, start + self._range - 1)
            logs, end = self._logs(start, end)
            for lg in logs:
                token = self.chain.token_at(lg.token)
                if token is None:
                    if lg.key not in self._skipped:
                        self._skipped.add(lg.key)
                        log.warning("event=deposit_unknown_token chain=%s tx=%s log_index=%d token=%s account=%d"
                                    " amount=%d action=skipped", self.chain.name, lg.tx_hash, lg.log_index, lg.token,
                                    lg.account, lg.amount)
                    continue
                seen[lg.key] = Seen(lg, token.asset)
            to = end
            ranges += 1
        return seen, to

    def _cursor(self) -> tuple[int, bool]:
        """The cursor to scan after, and whether the poll should go on (False: the node is behind it)."""
        name = self.chain.name
        stored = self.store.cursor(name)
        if stored is None:
            return self.chain.start_block - 1, True
        cursor, cursor_hash = stored
        if cursor < 0 or cursor_hash is None:
            return cursor, True
        now = self.rpc.block_hash(cursor)
        if now == cursor_hash:
            return cursor, True
        if self.reset_on_mismatch:
            orphaned = self.store.orphan_pending(name)
            cursor = self.chain.start_block - 1
            self.store.save_cursor(name, cursor, None)
            log.warning("event=chain_reset chain=%s old_cursor=%d old_hash=%s orphaned=%d", name, stored[0],
                        cursor_hash, orphaned)
            return cursor, True
        if now is None:
            log.warning("event=chain_behind chain=%s cursor=%d head_has_cursor_block=false action=wait", name, cursor)
            return cursor, False
        raise DeepReorg(f"chain {name}: block {cursor} is now {now}, was {cursor_hash} when processed")

    def poll_once(self) -> PollResult:
        """One pass: scan, record, credit what is deep enough, move the cursor."""
        c = self.chain
        if not self._checked:
            self.check_chain()
        head = self.rpc.block_number()
        cursor, go_on = self._cursor()
        if not go_on or head <= cursor:
            return PollResult(head, cursor)
        seen, scanned_to = self._scan(cursor + 1, head)
        changed = self.store.record(c.name, list(seen.values()), head, c.confirmations, cursor + 1,
                                    None if scanned_to >= head else scanned_to)
        for d in changed:
            log.info("event=deposit_%s chain=%s tx=%s log_index=%d block=%d account=%d asset=%s amount=%d"
                     " confirmations=%d/%d", "seen" if d.status == "pending" else d.status, c.name, d.tx_hash,
                     d.log_index, d.block_number, d.account, d.asset, d.amount, d.confirmations, d.required)

        pending = {d.key for d in self.store.pending(c.name)}
        ready = sorted((s for s in seen.values() if head - s.log.block_number + 1 >= c.confirmations),
                       key=lambda s: (s.log.block_number, s.log.log_index))
        credited: list[tuple[str, int]] = []
        rejected: list[tuple[str, int]] = []
        blocked_at: int | None = None
        for s in ready:
            lg = s.log
            if s.key not in pending:
                continue
            confirmations = head - lg.block_number + 1
            if self.rpc.block_hash(lg.block_number) != lg.block_hash:
                log.warning("event=deposit_not_canonical chain=%s tx=%s log_index=%d block=%d action=wait",
                            c.name, lg.tx_hash, lg.log_index, lg.block_number)
                blocked_at = lg.block_number if blocked_at is None else min(blocked_at, lg.block_number)
                continue
            ref = reference(c.name, lg)
            try:
                seq, events = self.submit(Credit(lg.account, s.asset, lg.amount, ref))
            except TimeoutError:
                raise SequencerUnavailable(f"no reply for the credit {ref}") from None
            first = events[0] if events else (E.REJECTED, Reject.UNAVAILABLE.value, "no events")
            if first[0] != E.REJECTED:
                self.store.mark_credited(c.name, s.key, seq, confirmations)
                credited.append(s.key)
                log.info("event=deposit_credited chain=%s ref=%s account=%d asset=%s amount=%d seq=%d"
                         " confirmations=%d/%d", c.name, ref, lg.account, s.asset, lg.amount, seq, confirmations,
                         c.confirmations)
            elif first[1] == Reject.DUPLICATE_REFERENCE.value:
                self.store.mark_credited(c.name, s.key, None, confirmations)
                credited.append(s.key)
                log.info("event=deposit_already_credited chain=%s ref=%s account=%d asset=%s amount=%d",
                         c.name, ref, lg.account, s.asset, lg.amount)
            elif first[1] == Reject.UNAVAILABLE.value:
                raise SequencerUnavailable(f"the credit {ref}: {first[2]}")
            else:
                reason = f"{first[1]}: {first[2]}"
                self.store.mark_rejected(c.name, s.key, reason)
                rejected.append(s.key)
                unknown = first[1] == Reject.UNKNOWN_ACCOUNT.value
                log.error("event=%s chain=%s ref=%s account=%d asset=%s amount=%d reason=%r",
                          "deposit_unattributed" if unknown else "deposit_rejected", c.name, ref, lg.account, s.asset,
                          lg.amount, reason)

        final = min(scanned_to, head - c.confirmations + 1)
        if blocked_at is not None:
            final = min(final, blocked_at - 1)
        if final > cursor:
            self.store.save_cursor(c.name, final, self.rpc.block_hash(final))
            cursor = final
        return PollResult(head, cursor, credited, rejected, changed)

    # ------------------------------------------------------------------ running

    def pending(self) -> list[Deposit]:
        """The chain's pending deposits with their confirmations (as of the last poll)."""
        return self.store.pending(self.chain.name)

    def run(self, stop: threading.Event) -> None:
        """Poll every ``poll_seconds`` until ``stop`` is set; retry failures with back-off."""
        name = self.chain.name
        delay = self.backoff_initial
        failing_since: float | None = None
        log.info("event=watcher_started chain=%s url=%s vault=%s confirmations=%d", name, self.rpc.url,
                 self.chain.vault, self.chain.confirmations)
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception as e:
                if isinstance(e, RpcUnavailable | RpcError):
                    event, level = "chain_unavailable", logging.WARNING
                    self._checked = False  # the node may come back as another chain
                elif isinstance(e, psycopg.Error):
                    event, level = "database_unavailable", logging.WARNING
                elif isinstance(e, SequencerUnavailable):
                    event, level = "sequencer_unavailable", logging.WARNING
                elif isinstance(e, ChainMismatch | DeepReorg):
                    event, level = "chain_refused", logging.ERROR
                    self._checked = False
                else:
                    event, level = "watcher_failed", logging.ERROR
                if failing_since is None:
                    failing_since = time.monotonic()
                    delay = self.backoff_initial
                log.log(level, "event=%s chain=%s error=%r retry_in_s=%.1f", event, name, e, delay,
                        exc_info=event == "watcher_failed")
                stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            if failing_since is not None:
                log.info("event=watcher_recovered chain=%s down_s=%.1f", name, time.monotonic() - failing_since)
                failing_since = None
            stop.wait(self.chain.poll_seconds)
        log.info("event=watcher_stopped chain=%s", name)

    def stopped(self) -> None:
        self.store.close()
