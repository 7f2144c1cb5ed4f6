"""The ``dpg`` command, run as a user runs it (a separate process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from dpg.config import Settings
from dpg.core import state
from dpg.core.commands import Credit, OpenAccount, PlaceOrder
from dpg.core.genesis import GENESIS, PERPS
from dpg.core.model import OrderType, Side
from dpg.system.node import Node

ROOT = Path(__file__).parents[1]


def dpg(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dpg.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=timeout, check=False)


def start_up(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    from tests.api.client import free_port

    proc = subprocess.Popen([sys.executable, "-m", "dpg.cli", "up", "--port", str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "DPG_DATA_DIR": env.get("DPG_DATA_DIR") or tempfile.mkdtemp(),
                                 "DPG_CUSTODY": "0", **env})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    return out


def test_up_on_a_database_url_lists_the_markets_and_stops_cleanly(pg_url: str) -> None:
    proc, line = start_up({"DPG_DATABASE_URL": pg_url})
    assert "DPG is up" in line and "BTC/USDT, ETH/USDT, BTC/USD, ETH/USD" in line, line
    assert "DPG stopped" in stop(proc)
    with psycopg.connect(pg_url) as c:
        assert c.execute("SELECT count(*) FROM journal").fetchone() == (len(GENESIS) + len(PERPS),)


@pytest.mark.slow
def test_up_with_no_configuration_runs_an_embedded_postgres_that_persists(tmp_path: Path) -> None:
    env = {"DPG_DATA_DIR": str(tmp_path / "data"), "DPG_DATABASE_URL": ""}
    proc, line = start_up(env)
    assert f"journal at seq {len(GENESIS) + len(PERPS)} on embedded PostgreSQL" in line, line
    stop(proc)
    assert (tmp_path / "data" / "pg" / "PG_VERSION").exists()
    proc, line = start_up(env)  # the same data: genesis is not listed twice
    assert f"journal at seq {len(GENESIS) + len(PERPS)} " in line, line
    stop(proc)


def test_replay_verify_prints_the_live_state_hash(pg_url: str) -> None:
    node = Node.open(pg_url, Settings.from_env({"DPG_SNAPSHOT_EVERY": "5"}), projections=False)
    node.sequencer.submit(OpenAccount(1))
    node.sequencer.submit(OpenAccount(2))
    node.sequencer.submit_wait(Credit(1, "USDT", 10**12, "u1"))
    node.sequencer.submit_wait(Credit(2, "BTC", 10**10, "b2"))
    for i in range(20):
        node.sequencer.submit_wait(PlaceOrder(1 + i % 2, "BTC/USDT", Side(i % 2), OrderType.LIMIT,
                                              (2_000_000 + i % 3) * 10_000, 30_000))
    live = state.state_hash(node.engine)
    node.close()
    r = dpg("replay", "--verify", env={"DPG_DATABASE_URL": pg_url})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["state_hash"] == live and out["restart_state_hash"] == live
    assert out["verified"] is True and out["snapshots_checked"] >= 1
    with psycopg.connect(pg_url) as c:  # a snapshot that does not match the journal is caught
        c.execute("UPDATE snapshots SET state_hash = repeat('0', 64) WHERE seq = (SELECT min(seq) FROM snapshots)")
    r = dpg("replay", "--verify", env={"DPG_DATABASE_URL": pg_url})
    assert r.returncode == 1 and "verification failed" in r.stderr


WORKLOAD = """op,id,account,side,type,price,qty
new,1,1,sell,limit,101,5
new,2,2,sell,limit,100,3
new,3,3,buy,limit,101,6
new,4,1,buy,post_only,102,1
new,5,2,buy,fok,101,9
new,6,3,sell,market,,1
cancel,1,,,,,
new,7,2,buy,limit,99,2
cancel,42,,,,,
"""


def test_replay_orders_writes_trades_and_book(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_text(WORKLOAD)
    r = dpg("replay-orders", str(tmp_path / "w.csv"), "--trades", str(tmp_path / "t.csv"),
            "--book", str(tmp_path / "b.csv"))
    assert r.returncode == 0, r.stderr
    # 3 buys 2's 3 at 100 then 3 of 1's 5 at 101; 4 post-only at 102 would cross 1 at 101: rejected;
    # 5 (FOK 9 at 101) sees only 2 left: rejected; 6 sells 1 at market into nothing resting on the
    # bid side... so it is rejected (no liquidity); 1 is cancelled; 7 rests.
    assert (tmp_path / "t.csv").read_text() == "taker_id,maker_id,price,qty\n3,2,100,3\n3,1,101,3\n"
    assert (tmp_path / "b.csv").read_text() == "id,side,price,remaining\n7,buy,99,2\n"


def test_replay_orders_rejects_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_text("op,id,account,side,type,price,qty\nnew,1,1,sideways,limit,1,1\n")
    r = dpg("replay-orders", str(tmp_path / "w.csv"), "--trades", str(tmp_path / "t.csv"),
            "--book", str(tmp_path / "b.csv"))
    assert r.returncode == 2 and "line 2" in r.stderr
    r = dpg("replay-orders", str(tmp_path / "missing.csv"), "--trades", "t", "--book", "b")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_bench_engine_prints_json_lines_for_dpg_and_its_peers() -> None:
    r = dpg("bench", "engine", "--json", "-n", "3000", "--book-commands", "2000", "--rounds", "2")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    # the compiled book-only peers run from .venv-peers (make test builds it)
    assert [x["peer"] for x in lines] == ["dpg", "dpg-futures", "pyorderbook", "lightmatchingengine",
                                          "dpg-book-upkeep", "limit-order-book", "nautilus-trader"]
    for x in lines:
        assert x["bench"] == "engine" and x["commands_per_s"] > 0
    for x in lines[:4]:
        assert x["workload"] == "mixed" and x["seconds"] > 0
        assert x["commands"] == (3000 + 3000 // 100 if x["peer"] == "dpg-futures" else 3000)  # with its index ticks
    for x in lines[:2]:
        assert x["conservation_ok"] is True and x["trades"] > 0
    for x in lines[4:]:
        assert x["workload"] == "book-upkeep" and x["commands"] == 2000 and x["book_only"] is (x is not lines[4])
        assert len(x["commands_per_s_runs"]) == 2
    assert lines[4]["conservation_ok"] is True and lines[4]["trades"] == 0
    assert all(x["book_matches_dpg"] is True and x["dpg_ratio"] > 0 for x in lines[5:])


def test_bench_restart_replays_the_tail_after_the_snapshot_it_placed(pg_server: str) -> None:
    r = dpg("bench", "restart", "-n", "8000", "--tail", "3000", env={"DPG_DATABASE_URL": pg_server})
    assert r.returncode == 0, r.stderr
    snap, full = (json.loads(x) for x in r.stdout.strip().splitlines())
    assert snap["from_snapshot"] is True and full["from_snapshot"] is False
    assert snap["journal_commands"] == full["journal_commands"] == full["replayed"] >= 8000
    # the latest snapshot sits the asked tail before the end (plus the fences that waited for it to be stored)
    assert 3000 <= snap["replayed"] < 3000 + 500 and snap["snapshot_seq"] + snap["replayed"] == snap["journal_commands"]
    assert snap["state_hash_equal"] is True and full["state_hash_equal"] is True


def test_bench_por_builds_stores_and_reads_back_proofs(pg_server: str) -> None:
    # more accounts than one hashing task, so the worker processes share the work
    r = dpg("bench", "por", "--accounts", "40000", "--workers", "2", "--sample", "50", "--reference",
            env={"DPG_DATABASE_URL": pg_server})
    assert r.returncode == 0, r.stderr
    packed, reference = (json.loads(x) for x in r.stdout.strip().splitlines())
    assert packed["impl"] == "packed" and packed["workers"] == 2 and packed["depth"] == reference["depth"] == 16
    assert packed["holdings"] is True  # every leaf with an exit address and counters
    assert packed["proofs_read"] == 50 and packed["store_mb"] > 0 and packed["peak_mb"] > 0
    assert reference["impl"] == "reference" and reference["root_matches"] is True  # the same tree both ways


def test_por_snapshot_marks_an_epoch_on_the_running_exchange(pg_url: str, tmp_path: Path) -> None:
    from tests.api.client import ADMIN, free_port

    port = free_port()
    env = {"DPG_DATABASE_URL": pg_url, "DPG_DATA_DIR": str(tmp_path), "DPG_ADMIN_TOKEN": ADMIN, "DPG_PORT": str(port),
           "DPG_CUSTODY": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "dpg.cli", "up"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, **env})
    assert proc.stdout is not None and "DPG is up" in proc.stdout.readline()
    try:
        r = dpg("por", "snapshot", env=env)
        assert r.returncode == 0, r.stderr
        marked = json.loads(r.stdout)
        assert marked["seq"] > len(GENESIS) and abs(marked["epoch"] - __import__("time").time()) < 60
        again = dpg("por", "snapshot", env=env)  # within the same second: refused, or a later epoch
        assert again.returncode == 0 or "STALE_EPOCH" in again.stderr
        wrong = dpg("por", "snapshot", env={**env, "DPG_ADMIN_TOKEN": "wrong"})
        assert wrong.returncode == 1 and "ADMIN_ONLY" in wrong.stderr
    finally:
        stop(proc)
    gone = dpg("por", "snapshot", env=env)
    assert gone.returncode == 1 and "no exchange" in gone.stderr


def test_operator_commands_act_on_the_running_exchange(pg_url: str, tmp_path: Path) -> None:
    import httpx

    from tests.api.client import ADMIN, free_port, signed

    port = free_port()
    env = {"DPG_DATABASE_URL": pg_url, "DPG_DATA_DIR": str(tmp_path), "DPG_ADMIN_TOKEN": ADMIN, "DPG_PORT": str(port),
           "DPG_CUSTODY": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "dpg.cli", "up"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, **env})
    assert proc.stdout is not None and "DPG is up" in proc.stdout.readline()
    try:
        r = dpg("user", "create", "carol", "--json", env=env)
        assert r.returncode == 0, r.stderr
        user = json.loads(r.stdout)
        assert dpg("user", "create", "carol", "--json", env=env).returncode == 1  # taken
        r = dpg("apikey", "create", "carol", "--permissions", "read,trade", "--json", env=env)
        assert r.returncode == 0, r.stderr
        key = json.loads(r.stdout)
        assert key["permissions"] == ["read", "trade"] and key["secret"]
        r = dpg("credit", "carol", "USDT", "1234.5", env=env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["amount"] == "1234.500000"
        refused = dpg("credit", "carol", "USDT", "0", env=env)
        assert refused.returncode == 1 and "INVALID_AMOUNT" in refused.stderr
        assert dpg("credit", "nobody", "USDT", "1", env=env).returncode == 1
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        balances = signed(http, key["key"], key["secret"], "GET", "/api/v1/balances").json()
        assert {"asset": "USDT", "available": "1234.500000", "locked": "0.000000", "total": "1234.500000"} in balances
        login = http.post("/api/v1/auth/login", json={"email": user["email"], "password": user["password"]})
        assert login.status_code == 200
    finally:
        stop(proc)


def test_operator_commands_find_the_running_exchange_from_another_folder_and_never_make_a_second(
        pg_url: str, tmp_path: Path) -> None:
    import httpx

    from tests.api.client import free_port

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bare = {k: v for k, v in os.environ.items() if not k.startswith("DPG_")}
    bare["XDG_STATE_HOME"] = str(tmp_path / "state")

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dpg.cli", *args], capture_output=True, text=True,
                              cwd=elsewhere, env={**bare, **env}, timeout=120, check=False)

    # nothing runs and this folder holds no exchange: a clear refusal, and no new database
    r = run("user", "create", "bob", "--json")
    assert r.returncode == 1 and "no exchange data in" in r.stderr and "no exchange running" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = run("user", "create", "bob", DPG_DATA_DIR=str(tmp_path / "nothing"))
    assert r.returncode == 1 and "holds no exchange" in r.stderr, r.stderr
    assert not (elsewhere / ".dpg").exists() and not (tmp_path / "nothing" / "pg").exists()

    # with an exchange running (started from another folder), the commands act on it
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dpg.cli", "up", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**bare, "DPG_DATABASE_URL": pg_url, "DPG_DATA_DIR": str(tmp_path / "data"),
                                 "DPG_CUSTODY": "0"})
    assert proc.stdout is not None and "DPG is up" in proc.stdout.readline()
    try:
        r = run("user", "create", "dave", "--json")
        assert r.returncode == 0, r.stderr
        dave = json.loads(r.stdout)
        r = run("credit", "dave", "USDT", "5")  # finds its API address and admin token too
        assert r.returncode == 0, r.stderr
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        login = http.post("/api/v1/auth/login", json={"email": dave["email"], "password": dave["password"]})
        assert login.status_code == 200, login.text
        balances = http.get("/api/v1/balances", headers={"authorization": f"Bearer {login.json()['token']}"}).json()
        assert {"asset": "USDT", "available": "5.000000", "locked": "0.000000", "total": "5.000000"} in balances
    finally:
        stop(proc)
    assert not (elsewhere / ".dpg").exists()
    r = run("user", "create", "erin")  # stopped: nothing to act on again
    assert r.returncode == 1 and "no exchange running" in r.stderr, r.stderr


@pytest.mark.parametrize(("amount", "says"), [("1e999999", "too large"), ("0.0000000000000000001", "more than 18"),
                                              ("1,5e", "not a decimal number"), ("0", "not a positive amount")])
def test_wallet_deposit_reads_its_amount_with_the_one_parser_before_anything_else(amount: str, says: str) -> None:
    # no exchange, no chain, not even a database: the amount is refused first
    r = dpg("wallet", "deposit", "1", amount, "--asset", "ETH",
            env={"DPG_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none", "DPG_DATA_DIR": tempfile.mkdtemp()},
            timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert says in r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def test_credit_with_no_exchange_answering_names_the_address_settings(pg_url: str, tmp_path: Path) -> None:
    from tests.api.client import free_port

    port = str(free_port())  # nothing listens there
    env = {"DPG_DATABASE_URL": pg_url, "DPG_DATA_DIR": str(tmp_path), "DPG_PORT": port, "DPG_CUSTODY": "0"}
    assert dpg("user", "create", "dave", "--json", env=env).returncode == 0
    r = dpg("credit", "dave", "USDT", "1", env=env)
    assert r.returncode == 1
    assert f"no exchange answers at http://127.0.0.1:{port}" in r.stderr and "--url" in r.stderr, r.stderr
    assert "DPG_HOST/DPG_PORT" in r.stderr and "Traceback" not in r.stderr


def test_api_without_the_engines_database_says_so_and_starts_nothing(tmp_path: Path) -> None:
    env = {"DPG_REDIS_URL": "redis://127.0.0.1:6379/0", "DPG_DATABASE_URL": "", "DPG_DATA_DIR": str(tmp_path / "none")}
    r = dpg("api", env=env, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "dpg api needs the engine's database: set DPG_DATABASE_URL" in r.stderr
    assert not (tmp_path / "none" / "pg").exists()  # no second, empty database made


def test_every_process_logs_one_key_value_format(pg_url: str) -> None:
    import re

    proc, line = start_up({"DPG_DATABASE_URL": pg_url, "DPG_LOG_LEVEL": "INFO"})
    assert "DPG is up" in line, line
    deadline = time.monotonic() + 30
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the follower (a process of its own) has written
        while time.monotonic() < deadline:
            row = conn.execute("SELECT max(seq) FROM projection_state").fetchone()
            if row and row[0]:
                break
            time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    lines = [x for x in err.splitlines() if x.strip()]
    shape = re.compile(r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d level=(debug|info|warning|error|critical) logger=[\w.]+ \S")
    assert lines and [x for x in lines if not shape.match(x)] == []
    loggers = {re.search(r"logger=([\w.]+)", x).group(1) for x in lines}  # type: ignore[union-attr]
    assert {"dpg.recovery", "dpg.follower"} <= loggers, loggers  # the engine's process and the follower's


def test_up_on_the_embedded_chain_journals_the_dev_aggregators_rounds_as_index_prices(pg_url: str,
                                                                                     tmp_path: Path) -> None:
    """``dpg up`` with custody (the in-process dev chain): a DevAggregator per perpetual deployed and
    fed by the dev feeder, which holds its seed price without ``--demo``. No spot book has a mid,
    so every index price journaled is the aggregator's."""
    import httpx

    from dpg.core.commands import IndexPrice, IndexStale
    from dpg.journal.codec import decode
    from dpg.journal.journal import Journal

    proc, line = start_up({"DPG_DATABASE_URL": pg_url, "DPG_DATA_DIR": str(tmp_path), "DPG_CUSTODY": "1",
                           "DPG_DEV_CHAIN": "", "DPG_POR_PUBLISH": "0"})
    try:
        assert "DPG is up" in line, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = line.split("DPG is up on ")[1].split()[0]
        feeds = json.loads((tmp_path / "chain" / "ethereum" / "deployment.json").read_text())["feeds"]
        assert sorted(feeds) == ["BTC-PERP", "ETH-PERP"]
        want = {"BTC-PERP": "50000.00", "ETH-PERP": "3000.00"}  # the dev seeds (dpg.api.demo.REFERENCE)
        deadline = time.monotonic() + 60
        views: dict[str, tuple[object, object]] = {}
        while time.monotonic() < deadline:
            views = {m["market"]: (m["index_price"], m["index_stale"])
                     for m in httpx.get(f"{base}/api/v1/futures/markets", timeout=10).json()}
            if all(views.get(k, (None,))[0] == v for k, v in want.items()):
                break
            time.sleep(0.5)
        assert views == {k: (v, False) for k, v in want.items()}, views
    finally:
        stop(proc)
    j = Journal(pg_url)
    try:
        commands = [decode(bytes(row[2])) for row in j.read(0)]
    finally:
        j.close()
    prices = {(c.market, c.price) for c in commands if isinstance(c, IndexPrice)}
    assert prices == {("BTC-PERP", 50_000 * 10**6), ("ETH-PERP", 3_000 * 10**6)}, prices
    assert not [c for c in commands if isinstance(c, IndexStale)]  # not at start, nor when stopping


def test_the_checkouts_dpg_wrapper_runs_the_dpg_command_from_any_folder(tmp_path: Path) -> None:
    r = subprocess.run([str(ROOT / "dpg"), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert "Usage: dpg" in r.stdout and "up" in r.stdout and "credit" in r.stdout


ETH_TIERS = {"ETH-PERP": [["0", "0.05", 20], ["100000", "0.1", "10"]]}


def test_perps_liq_price_isolated_short_is_the_issues_golden_line(tmp_path: Path) -> None:
    tiers = tmp_path / "tiers.json"
    tiers.write_text(json.dumps(ETH_TIERS))
    r = dpg("perps", "liq-price", "--wallet", "1000", "--mode", "isolated", "--tiers", str(tiers),
            "--position", "ETH-PERP:short:3@3000", timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "ETH-PERP 3174.60\n", "")


def test_perps_liq_price_reads_numbers_exactly_and_takes_the_tier_at_the_mark(tmp_path: Path) -> None:
    tiers = tmp_path / "tiers.json"
    # numbers as JSON numbers; 10,000 x 5 % = 500 cum for the second bracket
    tiers.write_text('{"ETH-PERP": [[0, 0.05, 20], [10000, 0.1, 10]]}')
    r = dpg("perps", "liq-price", "--wallet", "1000", "--mode", "isolated", "--tiers", str(tiers),
            "--position", "ETH-PERP:short:3@3000:3400", timeout=60)
    assert (r.returncode, r.stdout) == (0, "ETH-PERP 3181.82\n"), r.stderr  # 10,500 / 3.3 = 3181.8181...


def test_perps_liq_price_cross_with_two_positions_on_the_default_tables() -> None:
    # BTC long 1 @ 50,000 marked 49,000 (mm 196, upnl -1,000); ETH short 10 @ 3,000 marked 3,100 (mm 155, upnl -1,000)
    r = dpg("perps", "liq-price", "--wallet", "10000", "--mode", "cross",
            "--position", "BTC-PERP:long:1@50000:49000", "--position", "ETH-PERP:short:10@3000:3100", timeout=60)
    # (10,000 - 155 - 1,000 - 50,000) / (0.004 - 1) = 41,320.28; (10,000 - 196 - 1,000 + 30,000) / 10.05 = 3,861.09
    assert (r.returncode, r.stdout) == (0, "BTC-PERP 41320.28\nETH-PERP 3861.09\n"), r.stderr


def test_perps_liq_price_default_tables_and_none() -> None:
    # BTC-PERP's first tier (0.4 %): (500 - 50,000) / (0.004 - 1) = 49,698.795...
    r = dpg("perps", "liq-price", "--wallet", "500", "--mode", "isolated", "--position", "BTC-PERP:long:1@50000:49999",
            timeout=60)
    assert (r.returncode, r.stdout) == (0, "BTC-PERP 49698.80\n"), r.stderr
    # ETH-PERP's own first tier (0.5 %): (100 + 3,000) / (0.005 + 1) = 3,084.577...
    r = dpg("perps", "liq-price", "--wallet", "100", "--mode", "isolated", "--position", "ETH-PERP:short:1@3000",
            timeout=60)
    assert (r.returncode, r.stdout) == (0, "ETH-PERP 3084.58\n"), r.stderr
    r = dpg("perps", "liq-price", "--wallet", "60000", "--mode", "isolated", "--position", "BTC-PERP:long:1@50000",
            timeout=60)
    assert (r.returncode, r.stdout) == (0, "BTC-PERP none\n"), r.stderr


@pytest.mark.parametrize(("args", "tiers", "says"), [
    (["--position", "XRP-PERP:long:1@5"], None, "no tier table for XRP-PERP"),
    (["--position", "XRP-PERP:long:1@5"], ETH_TIERS, "no tier table for XRP-PERP"),
    (["--position", "ETH-PERP:long:1"], None, "MARKET:SIDE:QTY@ENTRY"),
    (["--position", "ETH-PERP:up:1@5"], None, "long or short"),
    (["--position", "ETH-PERP:long:x@5"], None, "quantity must be a decimal number"),
    (["--position", "ETH-PERP:long:0@5"], None, "must be positive"),
    (["--position", "ETH-PERP:long:1@-5"], None, "must be positive"),
    (["--position", "ETH-PERP:long:1@5:0"], None, "must be positive"),
    (["--position", "ETH-PERP:long:1@5", "--position", "BTC-PERP:long:1@5"], None, "exactly one position"),
    (["--position", "ETH-PERP:long:1@5"], "{not json", "not JSON"),
    (["--position", "ETH-PERP:long:1@5"], {"ETH-PERP": [["0", "0.05"]]}, "notional_floor, mmr, max_leverage"),
    (["--position", "ETH-PERP:long:1@5"], {"ETH-PERP": [["1", "0.05", 20]]}, "first tier's floor must be 0"),
    (["--position", "ETH-PERP:long:1@5"], {"ETH-PERP": [["0", "0.05", "2.5"]]}, "must be an integer"),
    (["--position", "ETH-PERP:long:1@5"], {"ETH-PERP": [["0", "0.1", 20]]}, "exceeds 100 %"),
    (["--position", "ETH-PERP:long:1@5"], '{"ETH-PERP": [[0, NaN, 20]]}', "not a number"),
    (["--mode", "portfolio", "--position", "ETH-PERP:long:1@5"], None, "mode must be"),
    (["--wallet", "ten", "--position", "ETH-PERP:long:1@5"], None, "--wallet must be a decimal number"),
])
def test_perps_liq_price_refuses_bad_input_with_exit_2(tmp_path: Path, args: list[str], tiers: object,
                                                        says: str) -> None:
    opts = {"--wallet": "1000", "--mode": "isolated"}
    for k in opts:
        if k in args:
            opts[k] = args[args.index(k) + 1]
            args = args[: args.index(k)] + args[args.index(k) + 2:]
    extra = [x for kv in opts.items() for x in kv]
    if tiers is not None:
        path = tmp_path / "tiers.json"
        path.write_text(tiers if isinstance(tiers, str) else json.dumps(tiers))
        extra += ["--tiers", str(path)]
    r = dpg("perps", "liq-price", *extra, *args, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == "" and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_perps_liq_price_with_a_missing_tiers_file_exits_2(tmp_path: Path) -> None:
    r = dpg("perps", "liq-price", "--wallet", "1", "--mode", "isolated", "--tiers", str(tmp_path / "none.json"),
            "--position", "ETH-PERP:long:1@5", timeout=60)
    assert r.returncode == 2 and "cannot read" in r.stderr, r.stderr
