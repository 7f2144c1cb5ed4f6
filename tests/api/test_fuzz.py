"""Schema-driven fuzzing of the OpenAPI with schemathesis: no input gets a 5xx, logged in or not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.client import ADMIN, User, served

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # generous limits: the fuzzer itself must not be the thing that gets refused
    with served(pg_server, tmp_path_factory.mktemp("fuzz"), "dpg_test_fuzz",
                DPG_RATE_IP="100000", DPG_RATE_KEY="100000") as b:
        yield b


def st(base: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("st")
    return subprocess.run(
        [str(cli), "run", f"{base}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "25",
         "--generation-deterministic", "--request-timeout", "20", "--no-color", *extra],
        capture_output=True, text=True, timeout=540, check=False,
    )


def test_no_input_gets_a_server_error(base: str) -> None:
    u = User(base, "fuzz@test.dpg")
    u.credit("USDT", "100000")
    u.credit("BTC", "10")
    u.order(market="BTC/USDT", side="buy", price="100", quantity="0.1")
    anonymous = st(base)
    assert anonymous.returncode == 0, anonymous.stdout[-6000:]
    # logged in (and as the operator): everything but logging this session out
    logged_in = st(base, "-H", f"Authorization: Bearer {u.token}", "-H", f"X-DPG-Admin-Token: {ADMIN}",
                   "--exclude-path", "/api/v1/auth/logout")
    assert logged_in.returncode == 0, logged_in.stdout[-6000:]
    # with a session, only the Binance-signed endpoints (their own signature scheme) answer 401
    unauthorized = _listed_after(logged_in.stdout, "401 Unauthorized")
    assert all("/api/v3/" in line for line in unauthorized), unauthorized


def _listed_after(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if heading in line:
            out = []
            for item in lines[i + 1:]:
                if not item.strip().startswith("- "):
                    break
                out.append(item.strip())
            return out
    return []
