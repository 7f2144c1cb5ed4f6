"""Restart: the latest snapshot plus a replay of the journal after it."""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Callable

from dpg.core import state
from dpg.core.engine import Engine
from dpg.journal import codec
from dpg.journal.journal import Applied, Journal

log = logging.getLogger("dpg.recovery")


def recover(
    journal: Journal,
    *,
    from_snapshot: bool = True,
    at_most: int | None = None,
    until: int | None = None,
    on_applied: Callable[[Engine, Applied], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Engine:
    """Rebuild the engine. ``at_most`` picks the newest snapshot at or below that seq (a lagging
    projection needs the events after its checkpoint); ``from_snapshot=False`` replays all; ``until``
    stops at that seq (the state as of an earlier command: a backup's)."""
    if until is not None:
        at_most = until if at_most is None else min(at_most, until)
    snap = journal.latest_snapshot(at_most) if from_snapshot else None
    while snap is not None and (hashlib.sha256(snap[2]).hexdigest() != snap[1]
                                or state.snapshot_format(snap[2]) not in state.FORMATS):
        # a damaged snapshot is never trusted, and one of an older version's format cannot be read:
        # fall back to an older one (or to the whole journal, which replays as it ran)
        if hashlib.sha256(snap[2]).hexdigest() != snap[1]:
            log.error("event=snapshot_corrupt seq=%d", snap[0])
        else:
            log.info("event=snapshot_older_format seq=%d format=%s", snap[0], state.snapshot_format(snap[2]))
        snap = journal.latest_snapshot(snap[0] - 1)
    # the collector stays off while the state is rebuilt: replay allocates a tuple per event beside
    # the long-lived orders, and every young collection would re-scan those (a third of a replay's
    # time); the caller freezes what was built (tune_gc)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _rebuild(journal, snap, until, on_applied, progress)
    finally:
        if enabled:
            gc.enable()


def _rebuild(journal: Journal, snap: tuple[int, str, bytes] | None, until: int | None,
             on_applied: Callable[[Engine, Applied], None] | None,
             progress: Callable[[int], None] | None) -> Engine:
    if snap is None:
        engine = Engine()
        start = 0
    else:
        start, _, body = snap
        engine = state.decode(body)
    log.info("event=replay_start snapshot=%d", start)
    apply = engine.apply
    decode = codec.decode
    n = 0
    for seq, ts, payload in journal.read(start, until):
        cmd = decode(payload)
        events = apply(cmd, seq, ts)
        if on_applied is not None:
            on_applied(engine, Applied(seq, ts, cmd, events))
        n += 1
        if progress is not None and n % 100_000 == 0:
            progress(n)
    log.info("event=replay_done snapshot=%d replayed=%d seq=%d", start, n, engine.seq)
    return engine


def tune_gc() -> None:
    """The engine allocates many short-lived tuples (events) beside millions of long-lived orders;
    CPython's default thresholds would re-scan the long-lived ones every few milliseconds. Collect
    the young generation rarely and freeze what recovery built. A process that keeps a rebuilt engine
    (the engine's, a projection follower's) calls it once recovery is done."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(200_000, 50, 1_000)
