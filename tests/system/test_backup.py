"""Backups on a real PostgreSQL: an archive of a trading exchange, more trading, a restore into a
fresh database and data directory that rebuilds the state hash of the backup (and, with the journal
shipped, of the last shipped file); altered and wrongly keyed archives refused."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from dpg.backup import archive, shipping
from dpg.backup.dump import take
from dpg.backup.restore import NotEmpty, check_empty_database, check_empty_directory, restore, verify
from dpg.backup.schedule import BackupSchedule, archives, prune
from dpg.config import Settings
from dpg.core import state
from dpg.core.commands import Credit, OpenAccount, PlaceOrder
from dpg.core.model import OrderType, Side
from dpg.store import db
from dpg.system.node import Node

ROOT = Path(__file__).parents[2]
KEY = bytes(range(32))


@pytest.fixture
def scratch(pg_server: str) -> Iterator[Callable[[], str]]:
    """Fresh empty databases named dpg_backup_*, dropped after the test."""
    made: list[str] = []

    def new() -> str:
        made.append(db.create_scratch(pg_server, "dpg_backup_test"))
        return made[-1]

    yield new
    for url in made:
        db.drop(url)


def trade(node: Node, start: int, n: int) -> None:
    """Two accounts credited, then ``n`` crossing orders from seq-stable prices."""
    seqr = node.sequencer
    for a in (1, 2):
        seqr.submit_wait(OpenAccount(a))
        seqr.submit_wait(Credit(a, "USDT", 10**12, f"u{a}-{start}"))
        seqr.submit_wait(Credit(a, "BTC", 10**10, f"b{a}-{start}"))
    for k in range(start, start + n):
        side = Side.BUY if k % 2 else Side.SELL
        price = (60_000 + k % 5) * 10**6
        seqr.submit_wait(PlaceOrder(1 + k % 2, "BTC/USDT", side, OrderType.LIMIT, price, (1 + k % 3) * 10_000))


def exchange(url: str, data_dir: Path) -> Node:
    """An exchange's database and data directory: a user with a session, the data files, a journal."""
    node = Node.open(url, Settings.from_env({"DPG_DATA_DIR": str(data_dir), "DPG_SNAPSHOT_EVERY": "25"}),
                     projections=False)
    with psycopg.connect(url) as conn:
        uid = conn.execute("INSERT INTO users (email, password_hash, email_skeleton) VALUES "
                           "('ann@example.com', 'argon2-hash', 'ann@example.com') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO sessions (token_hash, user_id, created_at, expires_at, ip) VALUES "
                     "(%s, %s, now(), now() + interval '1 day', '127.0.0.1')", (os.urandom(32), uid))
    (data_dir / "secret.key").write_text(secrets.token_hex(32) + "\n")
    (data_dir / "secret.key").chmod(0o600)
    (data_dir / "por").mkdir()
    (data_dir / "por" / "registry.json").write_text('{"registry": "0x' + "ab" * 20 + '"}')
    (data_dir / "pg").mkdir()  # an embedded database's folder: never archived as files
    (data_dir / "pg" / "PG_VERSION").write_text("16\n")
    return node


def test_a_restore_into_a_fresh_database_and_directory_rebuilds_the_state_hash_of_the_backup(
        scratch: Callable[[], str], tmp_path: Path) -> None:
    src, src_dir = scratch(), tmp_path / "src"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    try:
        trade(node, 0, 60)
        at_backup = state.state_hash(node.engine)  # every command is committed: the live state
        taken = take(src, src_dir, KEY, tmp_path / "backups")
        assert taken.seq == node.sequencer.committed_seq and taken.state_hash == at_backup
        trade(node, 60, 40)  # more trading after the backup
        assert state.state_hash(node.engine) != at_backup
    finally:
        node.close()
    assert taken.path.parent == tmp_path / "backups" and taken.path.stat().st_size == taken.size
    assert taken.path.stat().st_mode & 0o777 == 0o600
    assert b"ann@example.com" not in taken.path.read_bytes()  # encrypted

    dst, dst_dir = scratch(), tmp_path / "dst"
    check_empty_database(dst)
    check_empty_directory(dst_dir, [])
    r = restore(taken.path, KEY, dst, dst_dir)
    assert (r.seq, r.state_hash, r.archive_state_hash, r.matches) == (taken.seq, at_backup, at_backup, True)
    with psycopg.connect(dst) as conn:
        assert conn.execute("SELECT email FROM users").fetchall() == [("ann@example.com",)]
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)  # sessions are not kept
        assert conn.execute("SELECT max(seq), count(*) FROM journal").fetchone() == (taken.seq, taken.seq)
        assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] <= 1  # the newest (no projections)
        # the identity sequence goes on after the restored rows
        new = conn.execute("INSERT INTO users (email, password_hash, email_skeleton) VALUES "
                           "('bob@example.com', 'h', 'bob@example.com') RETURNING id").fetchone()[0]
        assert new == 2
    assert (dst_dir / "secret.key").read_text() == (src_dir / "secret.key").read_text()
    assert (dst_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (dst_dir / "por" / "registry.json").read_text() == (src_dir / "por" / "registry.json").read_text()
    assert not (dst_dir / "pg").exists() and not (dst_dir / "backups").exists()
    # the exchange comes back on the restored database at the backup's state
    back = Node(dst, Settings.from_env({"DPG_DATA_DIR": str(dst_dir)}), projections=False)
    try:
        assert back.engine.seq == taken.seq and state.state_hash(back.engine) == at_backup
    finally:
        back.close()


def test_an_archive_keeps_the_snapshots_a_restart_and_the_projection_follower_replay_from(
        scratch: Callable[[], str], tmp_path: Path) -> None:
    src, src_dir = scratch(), tmp_path / "src"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    try:
        trade(node, 0, 40)
    finally:
        node.close()  # every snapshot encoded is stored by now
    # a second run of the exchange: at least one snapshot more, however slowly the first one's were encoded
    node = Node.open(src, Settings.from_env({"DPG_DATA_DIR": str(src_dir), "DPG_SNAPSHOT_EVERY": "25"}),
                     projections=False)
    try:
        trade(node, 40, 40)
    finally:
        node.close()
    with psycopg.connect(src) as conn:
        snaps = [int(r[0]) for r in conn.execute("SELECT seq FROM snapshots ORDER BY seq")]
        assert len(snaps) >= 2
        conn.execute("UPDATE projection_state SET seq = %s", (snaps[0] + 1,))  # the follower lags behind
    taken = take(src, src_dir, KEY, tmp_path / "backups")
    dst = scratch()
    assert restore(taken.path, KEY, dst, tmp_path / "dst").matches
    with psycopg.connect(dst) as conn:
        kept = [int(r[0]) for r in conn.execute("SELECT seq FROM snapshots ORDER BY seq")]
    assert kept == [snaps[0], snaps[-1]]


def test_with_the_journal_shipped_a_restore_rebuilds_the_state_of_the_last_shipped_file(
        scratch: Callable[[], str], tmp_path: Path) -> None:
    src, src_dir, backups = scratch(), tmp_path / "src", tmp_path / "backups"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    try:
        trade(node, 0, 20)
        taken = take(src, src_dir, KEY, backups)
        trade(node, 20, 15)
        first = shipping.ship(src, KEY, backups, taken.seq)
        trade(node, 35, 15)
        assert first is not None
        second = shipping.ship(src, KEY, backups, first.last)
        at_shipped = state.state_hash(node.engine)
        assert second is not None and second.last == node.sequencer.committed_seq
        assert shipping.ship(src, KEY, backups, second.last) is None  # nothing new
        trade(node, 50, 10)  # never shipped: lost by a restore
    finally:
        node.close()
    files = shipping.shipped(backups / shipping.DIR)
    assert [(f.first, f.last) for f in files] == [(taken.seq + 1, first.last), (first.last + 1, second.last)]

    dst = scratch()
    r = restore(taken.path, KEY, dst, tmp_path / "dst", shipped=files)
    assert r.matches and r.seq == second.last and r.state_hash == at_shipped

    # a gap (the first file lost) is refused, after the archive's state is in place
    gap = scratch()
    with pytest.raises(archive.ArchiveError, match="leave a gap"):
        restore(taken.path, KEY, gap, tmp_path / "gap", shipped=files[1:])


def test_an_altered_a_cut_off_and_a_wrongly_keyed_archive_are_refused_leaving_nothing(
        scratch: Callable[[], str], tmp_path: Path) -> None:
    src, src_dir = scratch(), tmp_path / "src"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    try:
        trade(node, 0, 30)
    finally:
        node.close()
    taken = take(src, src_dir, KEY, tmp_path / "backups")
    body = taken.path.read_bytes()
    altered = tmp_path / "altered.dpgb"
    altered.write_bytes(body[:len(body) // 2] + bytes([body[len(body) // 2] ^ 1]) + body[len(body) // 2 + 1:])
    cut = tmp_path / "cut.dpgb"
    cut.write_bytes(body[:-40])
    header = tmp_path / "header.dpgb"
    header.write_bytes(body.replace(b'"kind": "dpg-backup"', b'"kind": "dpg-backuq"', 1))
    cases = [(altered, KEY, "damaged or altered"), (cut, KEY, "cut off|damaged or altered"),
             (header, KEY, "damaged or altered"), (taken.path, bytes(32), "another backup key")]
    for path, key, says in cases:
        dst, dst_dir = scratch(), tmp_path / f"dst-{path.stem}-{key[:1].hex()}"
        with pytest.raises(archive.ArchiveError, match=says):
            restore(path, key, dst, dst_dir)
        check_empty_database(dst)  # nothing committed: the restore can be run again
        assert not [p for p in dst_dir.iterdir()]
    dst = scratch()
    assert restore(taken.path, KEY, dst, tmp_path / "fine").matches


def test_a_restore_refuses_a_database_or_a_directory_that_holds_something(
        scratch: Callable[[], str], tmp_path: Path) -> None:
    used = scratch()
    db.migrate(used)
    with pytest.raises(NotEmpty, match="not empty"):
        check_empty_database(used)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secret.key").write_text("x")
    with pytest.raises(NotEmpty, match="not empty"):
        check_empty_directory(tmp_path / "data", [])
    (tmp_path / "data2").mkdir()
    (tmp_path / "data2" / "backup.key").write_text("x")  # the key an operator brings along is allowed
    check_empty_directory(tmp_path / "data2", [tmp_path / "data2" / "backup.key"])


def test_verify_restores_into_a_scratch_database_and_drops_it(
        scratch: Callable[[], str], pg_server: str, tmp_path: Path) -> None:
    src, src_dir = scratch(), tmp_path / "src"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    try:
        trade(node, 0, 10)
    finally:
        node.close()
    taken = take(src, src_dir, KEY, tmp_path / "backups")
    r = verify(taken.path, KEY, pg_server)
    assert r.matches and r.archive_state_hash == taken.state_hash and r.files == 2
    with psycopg.connect(pg_server) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'dpg_backup_verify%%'").fetchone()
    assert left == (0,)


def test_the_schedule_takes_an_archive_at_the_next_multiple_ships_after_it_and_keeps_the_newest(
        scratch: Callable[[], str], tmp_path: Path) -> None:
    src, src_dir = scratch(), tmp_path / "src"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    settings = Settings.from_env({"DPG_DATA_DIR": str(src_dir), "DPG_BACKUP_EVERY": "100", "DPG_BACKUP_KEEP": "2",
                                  "DPG_BACKUP_SHIP_EVERY": "5"})
    try:
        schedule = BackupSchedule(settings, src, since=1_000.0)
        schedule.step(1_050.0)  # within the interval it started in: nothing, and nothing to ship after
        assert archives(settings.backups()) == []
        schedule.step(1_100.0)  # the next multiple: an archive, and its key made in the data directory
        assert [s for s, _ in archives(settings.backups())] == [node.sequencer.committed_seq]
        assert (src_dir / "backup.key").is_file()
        trade(node, 0, 5)
        schedule.step(1_101.0)  # not due again; the new commands shipped
        assert schedule.shipped_seq == node.sequencer.committed_seq
        assert len(shipping.shipped(settings.backups() / shipping.DIR)) == 1
    finally:
        node.close()
    # the archive taken holds neither the backups nor the backup key
    with archives(settings.backups())[0][1].open("rb") as f:
        names = [e.name for e in archive.entries(archive.SealedReader(f, settings.backup_key_bytes()))]
    assert "file:secret.key" in names and not [n for n in names if "backup" in n]
    # retention: the newest two archives, and the shipped files the oldest kept one holds whole
    older = settings.backups() / "dpg-backup-20000101T000000Z-seq000000000001.dpgb"
    older.write_bytes(b"old")
    older.with_name(older.name + ".verified.json").write_text('{"ok": true}')
    newest = settings.backups() / "dpg-backup-29990101T000000Z-seq999999999999.dpgb"
    newest.write_bytes(b"new")
    assert prune(settings.backups(), 3) == []
    gone = prune(settings.backups(), 1)
    assert older in gone and [p for _, p in archives(settings.backups())] == [newest]
    assert not older.with_name(older.name + ".verified.json").exists()
    assert shipping.shipped(settings.backups() / shipping.DIR) == []  # the newest archive holds them


def dpg(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dpg.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=300, check=False)


def test_the_commands_back_up_verify_and_restore_and_refuse_with_a_clear_message(
        scratch: Callable[[], str], tmp_path: Path) -> None:
    src, src_dir = scratch(), tmp_path / "src"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    try:
        trade(node, 0, 10)
        at_backup = state.state_hash(node.engine)
    finally:
        node.close()
    key = secrets.token_hex(32)
    env = {"DPG_DATABASE_URL": src, "DPG_DATA_DIR": str(src_dir), "DPG_BACKUP_KEY": key}
    out = dpg("backup", "--to", str(tmp_path / "out"), env=env)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.parent == tmp_path / "out" and path.is_file()

    ok = dpg("backup", "verify", str(path), env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["verified"] is True
    mark = json.loads(path.with_name(path.name + ".verified.json").read_text())  # what the console shows
    assert mark["ok"] is True and at_backup in mark["detail"]

    wrong = dpg("backup", "verify", str(path), env={**env, "DPG_BACKUP_KEY": secrets.token_hex(32)})
    assert wrong.returncode == 1 and "another backup key" in wrong.stderr
    body = bytearray(path.read_bytes())
    body[-100] ^= 0xFF
    altered = tmp_path / "altered.dpgb"
    altered.write_bytes(bytes(body))
    bad = dpg("backup", "verify", str(altered), env=env)
    assert bad.returncode == 1 and "altered" in bad.stderr
    mark = json.loads((tmp_path / "altered.dpgb.verified.json").read_text())
    assert mark["ok"] is False and "altered" in mark["detail"]

    dst = scratch()
    dst_env = {"DPG_DATABASE_URL": dst, "DPG_DATA_DIR": str(tmp_path / "dst"), "DPG_BACKUP_KEY": key}
    back = dpg("restore", str(path), env=dst_env)
    assert back.returncode == 0, back.stderr
    done = json.loads(back.stdout.strip().splitlines()[-1])
    assert done["state_hash"] == at_backup and done["archive_verified"] is True
    again = dpg("restore", str(path), env=dst_env)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_dpg_up_ships_its_journal_after_the_newest_archive_and_a_restore_reaches_the_last_shipped_state(
        scratch: Callable[[], str], tmp_path: Path) -> None:
    import time

    from dpg.journal.journal import Journal
    from dpg.journal.recovery import recover
    from tests.test_cli import start_up, stop

    src, src_dir, backups = scratch(), tmp_path / "src", tmp_path / "backups"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    try:
        trade(node, 0, 10)
    finally:
        node.close()
    taken = take(src, src_dir, KEY, backups)
    env = {"DPG_DATABASE_URL": src, "DPG_DATA_DIR": str(src_dir), "DPG_BACKUP_KEY": KEY.hex(),
           "DPG_BACKUP_DIR": str(backups), "DPG_BACKUP_SHIP_EVERY": "1", "DPG_BACKUP_EVERY": "0"}
    proc, line = start_up(env)
    try:
        assert "DPG is up" in line, line
        # the node journals the perpetuals' index prices every second: shipped within seconds
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not shipping.shipped(backups / shipping.DIR):
            time.sleep(0.2)
    finally:
        stop(proc)
    files = shipping.shipped(backups / shipping.DIR)
    assert files and files[0].first == taken.seq + 1
    assert all(b.first == a.last + 1 for a, b in itertools.pairwise(files))
    journal = Journal(src)
    try:
        expected = state.state_hash(recover(journal, until=files[-1].last))
        assert journal.last_seq() >= files[-1].last
    finally:
        journal.close()
    r = restore(taken.path, KEY, scratch(), tmp_path / "dst", shipped=files)
    assert r.matches and r.seq == files[-1].last and r.state_hash == expected


def test_a_backup_and_a_restore_are_recorded_in_the_audit_log(scratch: Callable[[], str], tmp_path: Path) -> None:
    from dpg.store import audit

    src, src_dir = scratch(), tmp_path / "src"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    try:
        trade(node, 0, 5)
    finally:
        node.close()
    with psycopg.connect(src) as conn:  # a table of the operator's own is left out of a restore
        conn.execute("CREATE TABLE operator_notes (note text)")
        conn.execute("INSERT INTO operator_notes VALUES ('kept apart')")
    audit.record(src, "cli:tester", "user.create", {"id": 1})
    taken = take(src, src_dir, KEY, tmp_path / "backups")
    dst = scratch()
    r = restore(taken.path, KEY, dst, tmp_path / "dst")
    assert r.matches and r.skipped == ["operator_notes"]
    src_actions = [e.action for e in reversed(audit.entries(src))]
    assert src_actions[-2:] == ["user.create", "backup.create"]
    # the log as the archive holds it, continued by the restore's entry, its chain whole
    assert [e.action for e in reversed(audit.entries(dst))][-2:] == ["user.create", "backup.restore"]
    assert audit.verify(dst).ok and audit.verify(src).ok


def test_restore_into_the_embedded_database_refuses_a_wrong_file_first_and_an_altered_archive_leaves_it_empty(
        scratch: Callable[[], str], tmp_path: Path) -> None:
    src, src_dir = scratch(), tmp_path / "src"
    src_dir.mkdir()
    node = exchange(src, src_dir)
    try:
        trade(node, 0, 5)
        at_backup = state.state_hash(node.engine)
    finally:
        node.close()
    taken = take(src, src_dir, KEY, tmp_path / "backups")
    body = bytearray(taken.path.read_bytes())
    body[-50] ^= 1
    altered = tmp_path / "altered.dpgb"
    altered.write_bytes(bytes(body))
    dst_dir = tmp_path / "dst"
    env = {"DPG_DATABASE_URL": "", "DPG_DATA_DIR": str(dst_dir), "DPG_BACKUP_KEY": KEY.hex()}
    wrong = dpg("restore", str(taken.path), env={**env, "DPG_BACKUP_KEY": "ab" * 32})
    assert wrong.returncode == 1 and "another backup key" in wrong.stderr
    assert not dst_dir.exists()  # refused before the embedded database was made
    bad = dpg("restore", str(altered), env=env)
    assert bad.returncode == 1 and "altered" in bad.stderr
    assert sorted(p.name for p in dst_dir.iterdir()) == ["pg"]  # the embedded server, its database empty
    good = dpg("restore", str(taken.path), env=env)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout.strip().splitlines()[-1])["state_hash"] == at_backup
    assert (dst_dir / "secret.key").read_text() == (src_dir / "secret.key").read_text()
