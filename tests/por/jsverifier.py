"""Running the browser's proof verifier (src/dpg/web/por/verify.js) under Node in the tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
WEB = ROOT / "src" / "dpg" / "web"
VERIFY_JS = WEB / "por" / "verify.js"


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (WEB / "node_modules" / "@noble" / "hashes" / "sha3.js").is_file():
        # the web's vendored libraries, as pinned by src/dpg/web/package-lock.json
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB,
                       check=True, timeout=300)
    return node


def run_module(script: str, data: Any, timeout: float = 60) -> Any:
    """Run ``script`` (an ES module that may ``import … from "VERIFY"``, reads the JSON ``data`` as
    the global ``input`` and prints one JSON result) under Node; returns the parsed result."""
    prelude = ("const input = JSON.parse(await new Promise((ok) => { let s = '';"
               " process.stdin.on('data', (d) => s += d); process.stdin.on('end', () => ok(s)); }));\n")
    code = prelude + script.replace('"VERIFY"', json.dumps(VERIFY_JS.as_uri()))
    proc = subprocess.run([node_binary(), "--input-type=module", "-e", code], input=json.dumps(data),
                          capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
