"""When proof-of-reserves epochs are marked: at every multiple of the interval since the Unix
epoch (86,400 s: 00:00 UTC daily, the default; down to hourly), and on demand. An epoch's number
is its UTC time in seconds, so epochs only grow, whichever way they were taken."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from dpg.core import events as E
from dpg.core.commands import MarkEpoch
from dpg.core.events import Event

log = logging.getLogger("dpg.por")

MIN_INTERVAL = 3_600


def next_boundary(now: float, interval: int) -> int:
    return (int(now) // interval + 1) * interval


def mark(submit: Callable[[MarkEpoch], tuple[int, list[Event]]], epoch: int) -> tuple[int, list[Event]]:
    seq, events = submit(MarkEpoch(epoch))
    if events and events[0][0] == E.EPOCH_MARKED:
        log.info("event=por_epoch_marked epoch=%d seq=%d", epoch, seq)
    else:
        log.warning("event=por_epoch_refused epoch=%d reply=%r", epoch, events[:1])
    return seq, events


class Scheduler:
    """A thread that marks an epoch at every boundary; ``on_marked(epoch)`` is told of each one
    marked (the publisher, which then waits for the epoch's balances to be recorded)."""

    def __init__(self, submit: Callable[[MarkEpoch], tuple[int, list[Event]]], interval: int,
                 clock: Callable[[], float] = time.time, on_marked: Callable[[int], None] | None = None) -> None:
        if interval < MIN_INTERVAL:
            raise ValueError(f"the proof-of-reserves interval is at least {MIN_INTERVAL} s")
        self.submit = submit
        self.interval = interval
        self.clock = clock
        self.on_marked = on_marked
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dpg-por-schedule", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            boundary = next_boundary(self.clock(), self.interval)
            if self._stop.wait(max(0.0, boundary - self.clock())):
                return
            try:
                _, events = mark(self.submit, boundary)
                if events and events[0][0] == E.EPOCH_MARKED and self.on_marked is not None:
                    self.on_marked(boundary)
            except Exception:
                log.exception("event=por_epoch_failed epoch=%d", boundary)
