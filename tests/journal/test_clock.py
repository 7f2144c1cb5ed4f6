"""The sequencer's clock: fixed unless built movable; a movable one goes only forward, by bounded steps."""

from __future__ import annotations

import pytest

from dpg.journal.clock import MAX_ADVANCE_NS, Clock, ClockFixed


def test_a_fixed_clock_refuses_to_move() -> None:
    c = Clock()
    with pytest.raises(ClockFixed):
        c.advance(1)
    assert c.offset_ns == 0


def test_a_movable_clock_moves_forward_only() -> None:
    c = Clock(movable=True)
    before = c.now()
    assert c.advance(3_600_000_000_000) == 3_600_000_000_000
    assert c.now() - before >= 3_600_000_000_000
    for bad in (0, -1, MAX_ADVANCE_NS + 1):
        with pytest.raises(ValueError):
            c.advance(bad)
    assert c.offset_ns == 3_600_000_000_000
