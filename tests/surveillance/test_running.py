"""The surveillance of a running ``dpg up``: its thread raises the alert of two users signed in from
one address trading with each other through the API; ``dpg surveillance`` lists it, and a run over
the same window stores nothing new."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from tests.api.client import User, dpg_cli, exchange, until


def test_dpg_up_raises_a_wash_alert_and_the_cli_reads_it(pg_url: str, tmp_path: Path) -> None:
    with exchange(pg_url, tmp_path, DPG_SURVEILLANCE_INTERVAL="1") as base:
        alice = User(base, "alice@example.com")  # both sign in from 127.0.0.1: linked
        bob = User(base, "bob@example.com")
        alice.credit("ETH", "10")
        bob.credit("USDT", "100000")
        assert alice.order(market="ETH/USDT", side="sell", price="2000", quantity="1.5").status_code == 201
        assert bob.order(market="ETH/USDT", side="buy", price="2000", quantity="1.5").status_code == 201

        def stored() -> list[tuple[str, list[int], dict[str, object]]]:
            with psycopg.connect(pg_url) as conn:
                return [(r[0], list(r[1]), r[2]) for r in conn.execute(
                    "SELECT kind, accounts, evidence FROM surveillance_alerts ORDER BY id")]

        ((kind, accounts, evidence),) = until("the wash-trade alert", stored, timeout=60)
        assert (kind, accounts) == ("wash_trade", sorted([alice.id, bob.id]))
        assert {"by": "client_address", "address": "127.0.0.1"} in evidence["links"]

        env = {"DPG_DATABASE_URL": pg_url, "DPG_DATA_DIR": str(tmp_path)}
        listed = dpg_cli(env, "surveillance", "alerts", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [(r["kind"], r["accounts"]) for r in rows] == [("wash_trade", sorted([alice.id, bob.id]))]
        again = dpg_cli(env, "surveillance", "run", "--since", "1h", "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout.splitlines()[-1])["new"] == 0
        report = dpg_cli(env, "surveillance", "report", "--json")
        assert report.returncode == 0, report.stderr
        (line,) = [json.loads(x) for x in report.stdout.splitlines()]
        assert (line["market"], line["trades"], line["benford"]["result"]) == ("ETH/USDT", 1, "not tested")
        bad = dpg_cli(env, "surveillance", "run", "--since", "yesterday")
        assert bad.returncode == 2 and "neither a span" in bad.stderr
