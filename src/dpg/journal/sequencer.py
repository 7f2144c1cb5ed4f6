"""The sequencer: the single writer. It stamps each command with its sequence number and time,
applies it to the engine, and hands batches to the journal writer; a caller's reply is released
only after the batch holding its command is committed.

Two threads, a pipeline. The engine thread drains the inbox, applies commands, encodes each batch's
journal rows in PostgreSQL's binary COPY format and passes the batch on; meanwhile the journal
thread merges whatever batches are waiting into one transaction (group commit: one COPY of the
encoded rows), commits, then releases the replies and feeds the sinks (projections, market data). The engine may run
ahead of the journal by a bounded number of batches; none of that is visible to anyone before it
is durable.

If a commit fails (the database went away), the engine's state is ahead of the journal, so the
sequencer halts: the batch whose commit failed is answered UNAVAILABLE with its outcome unknown,
every later command UNAVAILABLE with nothing executed. While halted, the engine thread tries to
reach the database again with back-off (0.5 s doubling to 5 s); once it can, it rebuilds the state
from the journal (latest snapshot + replay, as a restart does), releases to the sinks what the
failed commit did make durable, and resumes taking commands. Nothing unjournaled was ever
acknowledged, and nothing acknowledged is lost.

A snapshot is stored only by the writer that journaled the commands it contains, in a journal
transaction after the one holding its sequence number: a forked child only encodes the image, and
the journal thread stores it. A snapshot of commands that never committed (the writer failed or was
killed) is never stored, so it cannot stand for other commands journaled later at those numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from dpg.core import events as E
from dpg.core import state
from dpg.core.commands import Command
from dpg.core.engine import Engine
from dpg.core.errors import Reject
from dpg.core.events import Event
from dpg.journal import codec
from dpg.journal.journal import Applied, Journal, copy_row
from dpg.journal.recovery import recover

log = logging.getLogger("dpg.sequencer")

Callback = Callable[[int, list[Event]], None]


@dataclass(frozen=True, slots=True)
class _Encoded:
    """A snapshot a child process encoded into a file (its SHA-256 in hex, then the body), read by
    the journal thread (off the engine thread) to be stored."""

    seq: int
    file: BinaryIO

    def read(self) -> tuple[int, str, bytes]:
        with self.file as f:
            f.seek(0)  # the child's writes moved the shared file offset
            digest = f.read(64).decode()
            return self.seq, digest, f.read()


Sink = Callable[[Sequence[Applied]], None]
# called on the engine thread after each batch is applied, with the engine and the batch's last
# command: what it reads of the engine is the state as of that command (durable once it is)
Observer = Callable[[Engine, Applied], None]
_Snapshot = tuple[int, str, bytes] | _Encoded
# (journal rows in binary COPY format, each command's reply callback, the applied commands,
# snapshot to store with them)
_Batch = tuple[list[bytes], list["Callback | None"], list[Applied], _Snapshot | None]


def _unavailable(reason: str) -> list[Event]:
    return E.rejected(Reject.UNAVAILABLE.value, reason)


HALTED = "the exchange's database is unreachable; nothing was executed, send it again once it is back"
UNCERTAIN = ("the database connection was lost while this command was being committed: it may or may not have"
             " been executed; once the exchange is back, look it up (by client order id) before sending it again")
RESUME_FIRST_S, RESUME_MAX_S = 0.5, 5.0
IDLE_PING_S = 1.0  # with no batch to commit for this long, the journal thread checks its connection


class Sequencer:
    def __init__(
        self,
        engine: Engine,
        journal: Journal,
        *,
        snapshot_every: int = 100_000,
        batch_max: int = 8_192,
        sinks: Sequence[Sink] = (),
        observers: Sequence[Observer] = (),
        clock: Callable[[], int] = time.time_ns,
        fork_snapshots: bool = True,
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.snapshot_every = snapshot_every
        self.batch_max = batch_max
        self.sinks = list(sinks)
        self.observers = list(observers)
        self.fork_snapshots = fork_snapshots and hasattr(os, "fork")
        self._snapshot_pid = 0  # the child encoding a snapshot, if any
        self._snapshot_seq = 0  # ... of the state after this seq
        self._snapshot_fd = -1  # ... into this (unlinked) file
        self._finished: _Encoded | None = None  # a child's snapshot, to be stored
        self.clock = clock
        self.seq = engine.seq
        self.last_ts = engine.ts
        self.last_snapshot = engine.seq
        self.committed_seq = engine.seq
        self.failed: BaseException | None = None  # set while halted: the commit error
        self.halted_at = 0.0  # wall-clock time the current halt began
        self._uncertain: list[Applied] = []  # the batch whose commit failed: durable or not, known on resume
        self._in_flight = 0  # batches handed to the journal thread and not yet answered
        self._flight_lock = threading.Lock()
        self._resume_at = 0.0
        self._resume_wait = RESUME_FIRST_S
        self._inbox: queue.SimpleQueue[tuple[Command, Callback | None]] = queue.SimpleQueue()
        self._out: queue.Queue[_Batch | None] = queue.Queue(maxsize=32)
        self._stopping = False
        self._engine_thread = threading.Thread(target=self._engine_loop, name="dpg-engine", daemon=True)
        self._journal_thread = threading.Thread(target=self._journal_loop, name="dpg-journal", daemon=True)

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        self._engine_thread.start()
        self._journal_thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what was submitted, commit it, then stop both threads (halted: at once; the
        threads are daemons, so a commit stuck on a dead connection cannot hold the process)."""
        self._stopping = True
        self._engine_thread.join(timeout)
        self._journal_thread.join(timeout)
        if self.failed is not None:
            self._drop_snapshot()
        self._reap(block=True)

    def status(self) -> tuple[bool, str]:
        """(ok, reason): whether commands are being taken, and why not."""
        if self._stopping:
            return False, "the exchange is stopping"
        if self.failed is not None:
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.halted_at))
            return False, f"halted since {since}: the journal's database is unreachable ({type(self.failed).__name__})"
        return True, ""

    # ------------------------------------------------------------------ submitting

    def submit(self, cmd: Command, callback: Callback | None = None) -> None:
        """Queue a command; ``callback(seq, events)`` runs on the journal thread after commit
        (seq 0 and an UNAVAILABLE rejection if it never will be)."""
        if self._stopping or self.failed is not None:
            if callback is not None:
                callback(0, _unavailable("the exchange is stopping" if self._stopping else HALTED))
            return
        self._inbox.put((cmd, callback))

    def submit_wait(self, cmd: Command, timeout: float = 30.0) -> tuple[int, list[Event]]:
        """Submit and block until the command is durable."""
        done = threading.Event()
        out: list[tuple[int, list[Event]]] = []

        def cb(seq: int, events: list[Event]) -> None:
            out.append((seq, events))
            done.set()

        self.submit(cmd, cb)
        if not done.wait(timeout):
            raise TimeoutError("no reply from the sequencer")
        return out[0]

    async def submit_async(self, cmd: Command) -> tuple[int, list[Event]]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[int, list[Event]]] = loop.create_future()

        def resolve(seq: int, events: list[Event]) -> None:
            if not fut.done():
                fut.set_result((seq, events))

        def callback(seq: int, events: list[Event]) -> None:
            loop.call_soon_threadsafe(resolve, seq, events)

        self.submit(cmd, callback)
        return await fut

    # ------------------------------------------------------------------ engine thread

    def _engine_loop(self) -> None:
        inbox = self._inbox
        apply = self.engine.apply
        encode = codec.encode
        clock = self.clock
        batch_max = self.batch_max
        while True:
            if self.failed is not None and not self._stopping:
                self._maybe_resume()
            try:
                first = inbox.get(timeout=0.05)
            except queue.Empty:
                if self._snapshot_pid:  # idle: store a finished snapshot (on stop, wait for it)
                    self._reap(block=self._stopping)
                if self._finished is not None and self.failed is None:
                    self._send([], [], [], self._finished)
                    self._finished = None
                if self._stopping:
                    break
                continue
            items = [first]
            try:
                while len(items) < batch_max:
                    items.append(inbox.get_nowait())
            except queue.Empty:
                pass
            if self.failed is not None:
                for _, cb in items:
                    if cb is not None:
                        cb(0, _unavailable(HALTED))
                continue
            rows: list[bytes] = []
            callbacks: list[Callback | None] = []
            applied: list[Applied] = []
            seq = self.seq
            ts = self.last_ts
            now = clock()
            ts = max(ts, now)
            for cmd, cb in items:
                try:
                    payload = encode(cmd)
                except Exception as e:  # not a command the journal can hold: nothing happens
                    log.warning("event=command_refused kind=%s error=%r", type(cmd).__name__, e)
                    if cb is not None:
                        cb(0, E.rejected(Reject.INVALID_ORDER.value, f"malformed command: {e}"))
                    continue
                seq += 1
                events = apply(cmd, seq, ts)
                rows.append(copy_row(seq, ts, payload))
                callbacks.append(cb)
                applied.append(Applied(seq, ts, cmd, events))
            self.seq = seq
            self.last_ts = ts
            if applied:
                for observe in self.observers:
                    observe(self.engine, applied[-1])
            snapshot = None
            if seq - self.last_snapshot >= self.snapshot_every:
                snapshot = self._snapshot()
            elif self._snapshot_pid:
                self._reap(block=False)
            if snapshot is None:
                # a forked snapshot goes with a batch after the one holding its seq
                snapshot, self._finished = self._finished, None
            if rows or snapshot is not None:
                self._send([b"".join(rows)] if rows else [], callbacks, applied, snapshot)
        self._out.put(None)

    def _send(self, rows: list[bytes], callbacks: list[Callback | None], applied: list[Applied],
              snapshot: _Snapshot | None) -> None:
        """Hand a batch to the journal thread (counted until it is answered)."""
        with self._flight_lock:
            self._in_flight += 1
        self._out.put((rows, callbacks, applied, snapshot))

    def _maybe_resume(self) -> None:
        """While halted (engine thread): once every batch sent to the journal thread is answered
        and the back-off has passed, try to reach the database and rebuild the state from it."""
        now = time.monotonic()
        if now < self._resume_at or self._in_flight:
            return
        try:
            self.journal.reconnect()
            engine = recover(self.journal)
        except Exception as e:
            self._resume_at = now + self._resume_wait
            log.warning("event=journal_unreachable retry_s=%.1f error=%r", self._resume_wait, e)
            self._resume_wait = min(self._resume_wait * 2, RESUME_MAX_S)
            return
        durable = [a for a in self._uncertain if a.seq <= engine.seq]
        self._drop_snapshot()  # an image of commands the journal may not hold
        self.engine.adopt(engine)
        self.seq = self.committed_seq = self.last_snapshot = engine.seq
        self.last_ts = max(self.last_ts, engine.ts)
        if durable:
            self._feed(durable)
        log.info("event=journal_resumed seq=%d halted_s=%.1f uncertain=%d of_them_durable=%d",
                 engine.seq, time.time() - self.halted_at, len(self._uncertain), len(durable))
        self._uncertain = []
        self._resume_wait = RESUME_FIRST_S
        self.failed = None

    def _halt(self, error: BaseException, applied: list[Applied]) -> None:
        """A commit failed (journal thread): stop taking commands until the database is back."""
        self.failed = error
        self.halted_at = time.time()
        self._uncertain = applied
        self._resume_at = time.monotonic() + RESUME_FIRST_S
        log.error("event=journal_failed halted=1 uncertain_from=%d uncertain_to=%d error=%r",
                  applied[0].seq if applied else 0, applied[-1].seq if applied else 0, error)

    def _drop_snapshot(self) -> None:
        """Forget the snapshot being encoded or waiting to be stored (engine thread, while halted)."""
        import signal

        if self._snapshot_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._snapshot_pid, signal.SIGKILL)
            self._reap(block=True)
        if self._finished is not None:
            self._finished.file.close()
            self._finished = None

    def _snapshot(self) -> _Snapshot | None:
        """Snapshot the state after ``self.seq``. With ``fork_snapshots`` a child process (a
        copy-on-write image of this moment) encodes it into a file, so the engine does not pause;
        once it has finished (``_reap``), it goes to the journal thread with a later batch.
        Otherwise it is encoded here and stored with this batch."""
        if self.fork_snapshots:
            if self._snapshot_pid and not self._reap(block=False):
                return None  # the previous one is still being written: try again after the next batch
            t = time.perf_counter()
            self.last_snapshot = self.seq
            fd = -1
            try:
                fd, path = tempfile.mkstemp(prefix="dpg-snapshot-")
                os.unlink(path)  # gone with the last descriptor, even if this process is killed
                pid = os.fork()
            except OSError as e:
                if fd >= 0:
                    os.close(fd)
                log.warning("event=snapshot_failed seq=%d error=%r", self.seq, e)
                return None
            if pid == 0:  # the child: touch nothing shared, never return
                try:
                    body = state.encode(self.engine)
                    with open(fd, "wb") as out:
                        out.write(hashlib.sha256(body).hexdigest().encode())
                        out.write(body)
                    os._exit(0)
                finally:
                    os._exit(1)
            self._snapshot_pid = pid
            self._snapshot_seq = self.seq
            self._snapshot_fd = fd
            log.info("event=snapshot_forked seq=%d pid=%d ms=%.1f", self.seq, pid, (time.perf_counter() - t) * 1e3)
            return None
        t = time.perf_counter()
        body = state.encode(self.engine)
        snap = (self.seq, hashlib.sha256(body).hexdigest(), body)
        self.last_snapshot = self.seq
        log.info("event=snapshot seq=%d bytes=%d ms=%.1f", self.seq, len(body), (time.perf_counter() - t) * 1e3)
        return snap

    def _reap(self, block: bool) -> bool:
        """Whether the snapshot child (if any) has finished; its snapshot becomes ``_finished``."""
        if not self._snapshot_pid:
            return True
        pid, status = os.waitpid(self._snapshot_pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        if os.waitstatus_to_exitcode(status) != 0:
            log.warning("event=snapshot_failed pid=%d status=%d", pid, status)
            os.close(self._snapshot_fd)
        else:
            self._finished = _Encoded(self._snapshot_seq, open(self._snapshot_fd, "rb"))  # noqa: SIM115
        self._snapshot_pid = 0
        self._snapshot_fd = -1
        return True

    # ------------------------------------------------------------------ journal thread

    def _journal_loop(self) -> None:
        out = self._out
        while True:
            try:
                item = out.get(timeout=IDLE_PING_S)
            except queue.Empty:  # idle: make sure the database is still there, so health tells the truth
                if self.failed is None and not self._stopping:
                    try:
                        self.journal.ping()
                    except Exception as e:
                        self._halt(e, [])
                continue
            if item is None:
                break
            rows, callbacks, applied, snapshot = item
            n_batches = 1
            ended = False
            # group commit: take every batch that is already waiting into the same transaction
            while True:
                try:
                    more = out.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    ended = True
                    break
                rows.extend(more[0])
                callbacks.extend(more[1])
                applied.extend(more[2])
                n_batches += 1
                if more[3] is not None:  # the newer snapshot is kept
                    if isinstance(snapshot, _Encoded):
                        snapshot.file.close()
                    snapshot = more[3]
            if isinstance(snapshot, _Encoded):
                encoded, snapshot = snapshot, None
                if self.failed is None:
                    try:
                        snapshot = encoded.read()
                    except OSError as e:
                        log.warning("event=snapshot_failed seq=%d error=%r", encoded.seq, e)
                else:
                    encoded.file.close()
            reason = HALTED
            if self.failed is None:
                try:
                    self.journal.append_encoded(rows, snapshot)
                    if applied:
                        self.committed_seq = applied[-1].seq
                except Exception as e:
                    self._halt(e, applied)
                    reason = UNCERTAIN
            if self.failed is not None:
                for cb in callbacks:
                    if cb is not None:
                        cb(0, _unavailable(reason))
            else:
                for cb, a in zip(callbacks, applied, strict=True):
                    if cb is not None:
                        cb(a.seq, a.events)
                self._feed(applied)
            with self._flight_lock:
                self._in_flight -= n_batches
            if ended:
                break

    def _feed(self, batch: list[Applied]) -> None:
        for sink in self.sinks if batch else ():  # (a batch may carry only a snapshot)
            try:
                sink(batch)
            except Exception:
                log.exception("event=sink_failed sink=%r", sink)
