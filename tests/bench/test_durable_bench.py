"""``dpg bench durable`` on the real PostgreSQL: both runs' lines, and the follower's lag over
time (what the lines say, never how fast)."""

from __future__ import annotations

from typing import Any

import pytest

from dpg.bench import durable_bench


def test_the_durable_bench_prints_the_followers_lag_until_it_has_caught_up(pg_server: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPG_DATABASE_URL", pg_server)  # scratch databases on the test server
    seen: list[dict[str, Any]] = []
    lines = durable_bench.run(3_000, 7, window=256, accounts=50, on_line=seen.append)
    runs = [ln for ln in seen if ln["bench"] == "durable"]
    lags = [ln for ln in seen if ln["bench"] == "durable-lag"]
    assert runs == lines and [r["projections"] for r in runs] == [False, True]
    total = 3_000 + 50 * 3 + 1  # the flow, the funding (an account and two credits each), the fence
    for r in runs:
        assert r["commands"] == 3_000 and r["unavailable"] == 0 and r["journal_rows"] >= total
    assert lags and seen.index(lags[0]) > seen.index(runs[0]) and seen.index(lags[-1]) < seen.index(runs[1])
    for ln in lags:
        assert 0 <= ln["follower_seq"] <= ln["journal_seq"] <= runs[1]["journal_rows"]
        assert ln["lag_commands"] == ln["journal_seq"] - ln["follower_seq"]
        assert ln["lag_s"] >= 0 and (ln["lag_commands"] > 0 or ln["lag_s"] == 0)
    assert [ln["t_s"] for ln in lags] == sorted(ln["t_s"] for ln in lags)
    last = lags[-1]  # measured after the follower caught up
    assert last["lag_commands"] == 0 and last["journal_seq"] == runs[1]["journal_rows"]
    assert runs[1]["lag_last_s"] == 0 and runs[1]["lag_max_s"] == max(ln["lag_s"] for ln in lags)
    assert runs[1]["lag_samples"] == len(lags) and runs[1]["projection_lag_s"] >= 0
