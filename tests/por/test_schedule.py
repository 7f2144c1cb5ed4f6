"""Epoch boundaries: daily at 00:00 UTC by default, hourly at most."""

from __future__ import annotations

import pytest

from dpg.por.schedule import MIN_INTERVAL, Scheduler, next_boundary


def test_boundaries() -> None:
    noon = 1_795_608_000  # 2026-11-25T12:00:00Z
    assert next_boundary(noon, 86_400) == 1_795_651_200  # 2026-11-26T00:00:00Z
    assert next_boundary(noon, 3_600) == noon + 3_600
    assert next_boundary(noon - 1, 3_600) == noon


def test_interval_floor() -> None:
    with pytest.raises(ValueError):
        Scheduler(lambda c: (0, []), MIN_INTERVAL - 1)
