"""The sequencer's clock: the wall clock in ns, which a dev exchange (``DPG_DEV_CLOCK=1``) may move
forward, as anvil's ``evm_increaseTime`` moves a dev chain's, so that a funding time is reached in
minutes instead of hours. Moving it is the operator's call (``POST /api/v1/admin/clock``); the time
of every command is journaled with it, so a replay needs no clock."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("dpg.clock")

MAX_ADVANCE_NS = 366 * 86_400 * 1_000_000_000  # most one step may move it: a year


class ClockFixed(Exception):
    """This exchange's clock does not move (it was not started with DPG_DEV_CLOCK=1)."""


class Clock:
    """``now()``: wall time plus the offset moved so far (never backwards: the sequencer stamps
    ``max(last, now)`` as well)."""

    def __init__(self, movable: bool = False) -> None:
        self.movable = movable
        self.offset_ns = 0

    def now(self) -> int:
        return time.time_ns() + self.offset_ns

    def advance(self, ns: int) -> int:
        """Move the clock ``ns`` forward; the offset it then has."""
        if not self.movable:
            raise ClockFixed("the clock moves only on a dev exchange started with DPG_DEV_CLOCK=1")
        if not 0 < ns <= MAX_ADVANCE_NS:
            raise ValueError(f"a step moves the clock 1 ns to {MAX_ADVANCE_NS} ns forward, not {ns}")
        self.offset_ns += ns
        log.warning("event=clock_advanced by_ms=%d offset_ms=%d", ns // 1_000_000, self.offset_ns // 1_000_000)
        return self.offset_ns
