"""Schema-driven fuzzing of the OpenAPI with schemathesis, as a signed-in user (session token) and
the operator's token, then the console's endpoints as an operator with 2FA on: no input to any
public or private endpoint gets a 5xx.

One run of its boundary-value phase (coverage) and a seeded random phase (fuzzing) over every
operation, a few examples each, so that it stays well under a minute in the suite. Deeper runs
by hand (the same command with ``--max-examples 60`` and other seeds) found the NUL characters
that reached PostgreSQL; tests/api/test_edge.py keeps those.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dpg.store import db
from tests.api.client import ADMIN, Codes, User, exchange

pytestmark = pytest.mark.timeout(300)

SEED = "11"  # fixed: the same requests every run
EXAMPLES = "5"  # per operation, in the fuzzing phase


@pytest.fixture(scope="module")
def fuzz_db(pg_server: str) -> Iterator[str]:
    url = db.create_scratch(pg_server, "dpg_test_fuzz")
    try:
        yield url
    finally:
        db.drop(url)


@pytest.fixture(scope="module")
def base(fuzz_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # generous limits: the fuzzer itself must not be the thing that gets refused
    with exchange(fuzz_db, tmp_path_factory.mktemp("fuzz"), DPG_RATE_IP="100000", DPG_RATE_KEY="100000") as b:
        yield b


def st(base: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("st")
    return subprocess.run(
        [str(cli), "run", f"{base}/openapi.json", "--checks", "not_a_server_error", "--phases", "coverage,fuzzing",
         "--max-examples", EXAMPLES, "--seed", SEED, "--workers", "1", "--request-timeout", "20", "--no-color",
         *extra],
        capture_output=True, text=True, timeout=240, check=False,
    )


def test_no_input_gets_a_server_error(base: str, fuzz_db: str) -> None:
    u = User(base, "fuzz@test.dpg")
    u.credit("USDT", "100000")
    u.credit("BTC", "10")
    assert u.order(market="BTC/USDT", side="buy", price="100", quantity="0.1").status_code == 201
    # logged in, and as the operator: every endpoint but logging this session out and the Binance
    # signed ones (their own signature over the query, which a fixed header cannot carry) and the
    # listen key's (an API key's alone, not a session's)
    run = st(base, "-H", f"Authorization: Bearer {u.token}", "-H", f"X-DPG-Admin-Token: {ADMIN}",
             "--exclude-path", "/api/v1/auth/logout",
             "--exclude-path-regex", "^/api/v3/(account|order|openOrders|allOrders|myTrades)$"
             "|^/fapi/v1/(leverageBracket|leverage|marginType|positionMargin|order|openOrders|allOpenOrders"
             "|allOrders|userTrades|income|algoOrder|openAlgoOrders|allAlgoOrders|listenKey|multiAssetsMargin"
             "|positionSide/dual)$"
             "|^/fapi/v[23]/(balance|account|positionRisk)$"
             "|^/api/v1/console/")  # an operator's, below
    assert run.returncode == 0, run.stdout[-6000:]
    selected, tested = re.search(r"Selected: (\d+)/\d+", run.stdout), re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested and int(tested[1]) == int(selected[1]) > 50, run.stdout[-2000:]  # every operation
    # the session reached every private endpoint: none answered only 401/403
    assert "Authentication failed" not in run.stdout, run.stdout[-4000:]
    assert u.http.get("/api/v1/balances").status_code == 200  # and it is still the user's

    # the console's, as an operator with 2FA on
    op = User(base, "fuzz-operator@test.dpg")
    codes = Codes(op.http.post("/api/v1/auth/2fa/setup").json()["secret"])
    assert op.http.post("/api/v1/auth/2fa/enable", json={"code": codes.next()}).status_code == 200
    with psycopg.connect(fuzz_db, autocommit=True) as conn:
        conn.execute("UPDATE users SET role = 'operator' WHERE id = %s", (op.id,))
    run = st(base, "-H", f"Authorization: Bearer {op.token}", "--include-path-regex", "^/api/v1/console/")
    assert run.returncode == 0, run.stdout[-6000:]
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert tested and int(tested[1]) == 6, run.stdout[-2000:]
    assert "Authentication failed" not in run.stdout, run.stdout[-4000:]
