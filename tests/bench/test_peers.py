"""The compiled book-only peers of ``dpg bench engine`` (limit-order-book, nautilus_trader) run in
``.venv-peers`` on the book-upkeep flow and end with the same book as DPG's full engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dpg.bench import engine_bench
from dpg.bench.workload import Op, book_upkeep

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def peers_python() -> Path:
    """The Python of ``.venv-peers``, installed (make) on first use."""
    done = subprocess.run(["make", "-s", ".venv-peers/.installed"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200, check=False)
    exe = ROOT / ".venv-peers" / "bin" / "python"
    why = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0 and exe.exists(), f"make .venv-peers/.installed failed:\n{why}"
    return exe


def resting_after(ops: list[Op]) -> int:
    placed = sum(1 for o in ops if o.op == "new")
    return placed - (len(ops) - placed)


def test_book_upkeep_never_crosses_and_cancels_only_resting_orders() -> None:
    ops = book_upkeep(20_000, seed=3)
    news = [o for o in ops if o.op == "new"]
    assert all(o.type == "limit" and o.qty >= 2 for o in news)
    assert max(o.price for o in news if o.side == "buy") < min(o.price for o in news if o.side == "sell")
    cancels = [o.id for o in ops if o.op == "cancel"]
    assert len(set(cancels)) == len(cancels) and 0.22 < len(cancels) / len(ops) < 0.28
    first = {o.id: i for i, o in enumerate(ops) if o.op == "new"}
    assert all(first[o.id] < i for i, o in enumerate(ops) if o.op == "cancel")


def test_each_peer_ends_with_dpgs_book(peers_python: Path) -> None:
    ops = book_upkeep(6000, seed=11, accounts=200)
    line, engine = engine_bench.run_dpg_book(ops, accounts=200)
    assert line["conservation_ok"] and line["trades"] == 0
    assert line["resting"] == resting_after(ops) > 2000  # DPG rested every order of the flow
    mine = engine_bench.dpg_book(engine)
    assert mine["bids"] and mine["asks"] and mine["bids"][0][0] < mine["asks"][0][0]

    lines: dict[str, dict[str, Any]] = {x["peer"]: x for x in engine_bench.run_peers(ops, book=True,
                                                                                      python=peers_python)}
    assert set(lines) == {"limit-order-book", "nautilus-trader"}, lines
    for name, peer in lines.items():
        assert peer["book_only"] is True and peer["commands"] == len(ops) and peer["commands_per_s"] > 0, name
        assert peer["orders"] == line["resting"], name
        assert peer["bids"] == mine["bids"], name  # [price, lots, orders] per level, best first
        assert peer["asks"] == mine["asks"], name
    # nautilus shows its orders: the same ids in the same queue order at every level
    assert lines["nautilus-trader"]["bids_ids"] == mine["bids_ids"]
    assert lines["nautilus-trader"]["asks_ids"] == mine["asks_ids"]


def test_a_peer_that_missed_a_cancel_does_not_match(peers_python: Path) -> None:
    ops = book_upkeep(2000, seed=5, accounts=100)
    _, engine = engine_bench.run_dpg_book(ops, accounts=100)
    mine = engine_bench.dpg_book(engine)
    skipped = next(i for i, o in enumerate(ops) if o.op == "cancel")
    (peer,) = engine_bench.run_peers(ops[:skipped] + ops[skipped + 1:], book=True, python=peers_python,
                                     peers=("limit-order-book",))
    assert peer["orders"] == len(engine.orders) + 1
    assert peer["bids"] != mine["bids"] or peer["asks"] != mine["asks"]


def test_the_bench_prints_ratios_and_a_book_check_per_peer(peers_python: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_bench, "PEERS_VENV", peers_python.parents[1])
    lines = engine_bench.run_book_upkeep(3000, seed=7, accounts=100, rounds=3)
    assert [x["peer"] for x in lines] == ["dpg-book-upkeep", "limit-order-book", "nautilus-trader"]
    dpg = lines[0]
    assert dpg["book_only"] is False and isinstance(dpg["ahead_of_cpp_book"], bool)
    assert len(dpg["commands_per_s_runs"]) == 3 and dpg["commands_per_s"] == sorted(dpg["commands_per_s_runs"])[1]
    for x in lines[1:]:
        assert x["book_only"] is True and x["book_matches_dpg"] is True and x["rounds"] == 3
        ratios = sorted(d / p for d, p in zip(dpg["commands_per_s_runs"], x["commands_per_s_runs"], strict=True))
        assert x["dpg_ratio"] == round(ratios[1], 3)  # the median round's DPG over the peer
        assert "bids" not in x and "asks_ids" not in x  # the books are compared, not printed
    assert dpg["ahead_of_cpp_book"] is (lines[1]["dpg_ratio"] > 1)


def test_without_the_peers_environment_the_bench_says_it_skipped_them(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_bench, "PEERS_VENV", tmp_path / ".venv-peers")
    lines = engine_bench.run_book_upkeep(500, seed=7, accounts=50, rounds=2)
    assert lines[0]["peer"] == "dpg-book-upkeep" and lines[0]["commands_per_s"] > 0
    assert len(lines) == 2 and "not found" in lines[1]["skipped"] and "make .venv-peers" in lines[1]["skipped"]
    assert "ahead_of_cpp_book" not in lines[0]


def test_a_failing_peers_process_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / ".venv-peers" / "bin" / "python"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\necho 'no peers here' >&2\nexit 3\n")
    exe.chmod(0o755)
    monkeypatch.setattr(engine_bench, "PEERS_VENV", exe.parents[1])
    lines = engine_bench.run_book_upkeep(500, seed=7, accounts=50, rounds=2)
    assert lines[0]["peer"] == "dpg-book-upkeep" and len(lines[0]["commands_per_s_runs"]) == 2
    assert len(lines) == 2 and lines[1]["skipped"] == "peers.py exited 3: no peers here"


def test_a_python_without_the_peer_packages_says_they_are_not_installed() -> None:
    lines = engine_bench.run_peers(book_upkeep(200, seed=7), python=Path(sys.executable))
    assert [x["peer"] for x in lines] == ["limit-order-book", "nautilus-trader"]
    assert all(x["error"].startswith("not installed") for x in lines)
