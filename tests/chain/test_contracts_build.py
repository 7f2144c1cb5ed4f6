"""The Solidity side of custody: ``contracts/build.sh --check`` installs the toolchain from npm (when
``contracts/node_modules`` is missing or stale), builds the contracts, runs every forge test (unit,
fuzz, invariant) and fails if ``src/dpg/chain/artifacts`` differs from what the contracts build to."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
BUILD = ROOT / "contracts" / "build.sh"
ARTIFACTS = ROOT / "src" / "dpg" / "chain" / "artifacts"


@pytest.mark.timeout(960)
def test_contracts_build_test_and_artifacts_are_current() -> None:
    proc = subprocess.run(["bash", str(BUILD), "--check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-20000:]

    # forge's closing line: "Ran N test suites in …: P tests passed, F failed, S skipped (T total tests)"
    summaries = re.findall(r"(\d+) tests passed, (\d+) failed, (\d+) skipped \((\d+) total tests\)", output)
    assert summaries, output[-20000:]
    passed, failed, skipped, total = map(int, summaries[-1])
    assert passed > 0
    assert failed == 0
    assert skipped == 0
    assert passed == total
    assert "[FAIL" not in output
    assert "artifacts are up to date" in output

    for name in ("Vault", "DPGToken", "DevToken", "ForwarderFactory", "DepositForwarder", "Staking", "DPGGovernor",
                 "DPGTimelock", "ExchangeParams"):
        artifact = json.loads((ARTIFACTS / f"{name}.json").read_text())
        assert artifact["contractName"] == name
        assert sorted(artifact) == ["abi", "bytecode", "contractName", "deployedBytecode"]
        assert artifact["bytecode"].startswith("0x") and len(artifact["bytecode"]) > 2
        assert artifact["abi"]
