"""What the operator's console reads, apart from the browser: the backup folder's listing with each
backup's verification state, surveillance alerts on a database that has no surveillance table, and
each chain's head (from a real anvil node, or none from one that does not answer)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool

from dpg.api import console
from tests.chain.conftest import anvil_bin  # noqa: F401 (the anvil binary's fixture)


def test_backups_are_listed_with_their_verification_state(tmp_path: Path) -> None:
    assert console.backups(None) == {"dir": None, "backups": []}
    assert console.backups(tmp_path / "none") == {"dir": str(tmp_path / "none"), "backups": []}
    (tmp_path / "a.dump").write_bytes(b"12345")
    (tmp_path / "b.dump").write_bytes(b"1")
    (tmp_path / "b.dump.verified.json").write_text(json.dumps({"ok": False, "detail": "checksum differs"}))
    (tmp_path / "journal").mkdir()  # the shipped journal files' folder: not an archive
    (tmp_path / "journal" / "000001.part").write_bytes(b"xyz")
    (tmp_path / "c.dump").write_bytes(b"xyz")
    (tmp_path / "c.dump.verified.json").write_text("{not json")
    (tmp_path / "d.dump").write_bytes(b"")
    (tmp_path / "d.dump.verified.json").write_text(json.dumps({"ok": True, "verified_at": "2026-12-01T00:00:00Z"}))
    listed = {b["name"]: b for b in console.backups(tmp_path)["backups"]}
    assert set(listed) == {"a.dump", "b.dump", "c.dump", "d.dump"}
    assert (listed["a.dump"]["state"], listed["a.dump"]["size"]) == ("unverified", 5)
    assert (listed["b.dump"]["state"], listed["b.dump"]["detail"]) == ("failed", "checksum differs")
    # an unreadable verification is no pass
    assert (listed["c.dump"]["state"], listed["c.dump"]["size"]) == ("failed", 3)
    assert (listed["d.dump"]["state"], listed["d.dump"]["verified_at"]) == ("verified", "2026-12-01T00:00:00Z")


def test_alerts_are_none_while_there_is_no_surveillance_table(pg_url: str) -> None:
    async def read() -> list[object]:
        async with AsyncConnectionPool(pg_url, min_size=1, max_size=1, open=False) as pool:
            return list(await console.alerts(pool, 10))

    assert asyncio.run(read()) == []


def test_each_chains_head_and_the_watchers_lag_behind_it(pg_url: str, anvil_bin: Path) -> None:  # noqa: F811
    from dpg.chain.anvil import Anvil
    from dpg.chain.rpc import Rpc

    node = Anvil.start(anvil_bin, chain_id=31337)
    try:
        Rpc(node.url).call("anvil_mine", [hex(12)])
        with psycopg.connect(pg_url) as conn:
            for name, rpc_url in (("ethereum", node.url), ("polygon", "http://127.0.0.1:1")):
                conn.execute("INSERT INTO chains (name, chain_id, rpc_url, vault, confirmations, native_asset, tokens,"
                             " signers) VALUES (%s, 31337, %s, %s, 3, 'ETH', '[]', '[]')",
                             (name, rpc_url, "0x" + "11" * 20))
            conn.execute("INSERT INTO chain_cursors (chain, block_number) VALUES ('ethereum', 5)")

        async def read() -> list[dict[str, object]]:
            async with AsyncConnectionPool(pg_url, min_size=1, max_size=2, open=False) as pool:
                return await console.chains(pool)

        eth, polygon = asyncio.run(read())
    finally:
        node.stop()
    assert (eth["chain"], eth["head"], eth["watched"], eth["lag"], eth["error"]) == ("ethereum", 12, 5, 7, "")
    assert (polygon["chain"], polygon["head"], polygon["watched"], polygon["lag"]) == ("polygon", None, None, None)
    assert polygon["error"]  # the node that does not answer is named, not raised
