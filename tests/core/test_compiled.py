"""The compiled core (setup.py: mypyc) against its reference, the pure-Python modules: the same
seeded journals give the same events and the same state hashes in both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dpg.core

ROOT = Path(__file__).resolve().parents[2]


def _side(pure: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "DPG_CORE"}
    if pure:
        env["DPG_CORE"] = "pure"
    r = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "tests.core.twin"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def test_the_core_in_use_is_the_compiled_one() -> None:
    """make and pip install build it; DPG_CORE=pure is the only way this suite runs without it."""
    assert dpg.core.compiled() or os.environ.get("DPG_CORE") == "pure"


def test_compiled_and_pure_cores_emit_the_same_events_and_reach_the_same_state() -> None:
    compiled, pure = _side(pure=False), _side(pure=True)
    assert compiled.pop("compiled") is True and pure.pop("compiled") is False
    assert compiled.keys() == pure.keys() == {"golden journal", "BTC/USDT flow", "BTC-PERP flow", "liquidations"}
    for name in compiled:
        assert compiled[name] == pure[name], name
        assert compiled[name]["conservation_errors"] in (0, []), name
    assert compiled["golden journal"]["state_hash"] == json.loads(
        (ROOT / "tests/core/fixtures/journal-hash.json").read_text())["state_hash"]
    assert compiled["BTC/USDT flow"]["trades"] > 1000 and compiled["BTC-PERP flow"]["trades"] > 1000
    assert all(n > 0 for n in compiled["liquidations"]["liquidations_via"])  # the book, the fund, ADL
