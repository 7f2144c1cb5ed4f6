"""Restoring a backup: an archive into an empty database and data directory (then the shipped
journal files after it), and the check of an archive by a restore into a scratch database."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from dpg.backup import archive
from dpg.backup.audit import audit
from dpg.backup.dump import Progress, Quiet, quoted
from dpg.backup.shipping import Shipped, replay_shipped
from dpg.core import state
from dpg.journal.journal import Journal
from dpg.journal.recovery import recover
from dpg.store import db

log = logging.getLogger("dpg.backup")


VERIFIED = ".verified.json"  # beside an archive: its last verification (the operator's console shows it)


class NotEmpty(RuntimeError):
    """A restore's database or data directory holds something already."""


@dataclass(frozen=True, slots=True)
class Restored:
    seq: int  # the journal's last command after the restore
    state_hash: str  # the state hash replayed from the restored journal, as of ``seq``
    archive_seq: int  # the archive's last command
    archive_state_hash: str  # the state hash the archive says it holds, as of ``archive_seq``
    replayed_archive_hash: str  # the state hash replayed from the restored journal, as of ``archive_seq``
    tables: int
    rows: int
    files: int
    skipped: list[str]  # tables of the archive not in DPG's schema (an operator's own): not restored

    @property
    def matches(self) -> bool:
        """The archive's state was rebuilt exactly."""
        return self.replayed_archive_hash == self.archive_state_hash


def check_empty_directory(data_dir: Path, allow: list[Path]) -> None:
    """Raise ``NotEmpty`` unless ``data_dir`` is missing or empty (but for the files in ``allow``:
    the backup key an operator put there)."""
    if not data_dir.exists():
        return
    if not data_dir.is_dir():
        raise NotEmpty(f"the data directory {data_dir} is not a directory")
    allowed = {p.resolve() for p in allow}
    found = sorted(p.name for p in data_dir.iterdir() if p.resolve() not in allowed)
    if found:
        raise NotEmpty(f"the data directory {data_dir} is not empty ({', '.join(found[:5])}"
                       f"{', …' if len(found) > 5 else ''}): a restore fills only an empty one; name a new"
                       " one with DPG_DATA_DIR")


def check_empty_database(url: str) -> None:
    """Raise ``NotEmpty`` unless the database has no table at all."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_database(), count(*) FROM pg_tables WHERE schemaname = current_schema()"
                           ).fetchone()
    if row is not None and int(row[1]):
        raise NotEmpty(f"the database {row[0]} is not empty ({row[1]} tables): a restore fills only an empty database;"
                       " create a new one and name it with DPG_DATABASE_URL")


def restore(path: Path, key: bytes, url: str, data_dir: Path, *, shipped: Sequence[Shipped] = (),
            progress: Progress | None = None, record: bool = True) -> Restored:
    """Fill the empty database of ``url`` and the data directory from the archive at ``path``, then
    append the journal of the ``shipped`` files that follow it. Nothing is kept of an archive that
    does not open whole (``archive.ArchiveError``): the database's work commits, and the files move
    into place, only after its last chunk is checked."""
    progress = progress or Quiet()
    check_empty_database(url)  # a restore never writes over an exchange
    progress.start(path.stat().st_size)
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir))
    try:
        with path.open("rb") as src, psycopg.connect(url) as conn:
            reader = archive.SealedReader(src, key)
            loaded = _load(conn, reader, staging, progress, src)
            conn.commit()
        for item in sorted(staging.iterdir()):
            os.replace(item, data_dir / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest, rows, files, skipped = loaded
    db.migrate(url)  # the migrations of a newer DPG than the archive's
    archive_seq = int(manifest["seq"])
    at_archive = _state_hash(url, archive_seq)
    seq, digest = archive_seq, at_archive
    if shipped:
        with psycopg.connect(url) as conn:
            seq = replay_shipped(conn, key, list(shipped))
        if seq != archive_seq:
            digest = _state_hash(url, seq)
    out = Restored(seq, digest, archive_seq, str(manifest["state_hash"]), at_archive,
                   len(manifest["tables"]) - len(skipped), rows, files, skipped)
    log.info("event=backup_restored archive=%s seq=%d state_hash=%s archive_seq=%d matches=%s", path.name, seq,
             digest, out.archive_seq, out.matches)
    if record:
        audit(url, "backup.restore", {"archive": path.name, "archive_seq": archive_seq, "verified": out.matches,
                                      "shipped_files": len(shipped), "seq": seq, "state_hash": digest})
    return out


def _state_hash(url: str, seq: int) -> str:
    journal = Journal(url)
    try:
        return state.state_hash(recover(journal, until=seq))
    finally:
        journal.close()


def _load(conn: psycopg.Connection[Any], reader: archive.SealedReader, staging: Path, progress: Progress,
          src: Any) -> tuple[dict[str, Any], int, int, list[str]]:
    """The archive's entries into the open transaction of ``conn`` and the staging directory."""
    it = archive.entries(reader)
    first = next(it, None)
    if first is None or first.name != "manifest":
        raise archive.ArchiveError("the archive does not start with its manifest")
    manifest = first.meta
    known = {v for v, _, _ in db.migrations()}
    newer = sorted(set(manifest["migrations"]) - known)
    if newer:
        raise archive.ArchiveError(f"the archive is of a newer DPG (migrations {newer} are unknown here): restore it "
                                   "with that version or a later one")
    db.migrate_within(conn, max(manifest["migrations"], default=0))
    described = {t["name"]: t["columns"] for t in manifest["tables"]}
    schema = {str(r[0]) for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    skipped = sorted(set(described) - schema)  # tables of the archive's database that DPG's schema has not
    if skipped:
        log.warning("event=restore_tables_skipped tables=%s reason=%r", ",".join(skipped),
                    "not made by DPG's migrations")
    # what the migrations just wrote (seeded rows) makes way for the archive's; only tables holding
    # rows are emptied, so the audit log (append-only: its trigger refuses TRUNCATE) is filled as it is
    seeded = [q for q in (quoted(conn, n, [])[0] for n in described if n in schema)
              if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {q})").fetchone() == (True,)]
    if seeded:
        conn.execute("TRUNCATE " + ", ".join(seeded) + " CASCADE")
    counts: dict[str, int] = {}
    files = 0
    read = 0

    def moved(label: str, before: int) -> int:
        now = int(src.tell())
        progress.advance(label, now - before)
        return now

    for entry in it:
        kind, _, name = entry.name.partition(":")
        if kind == "table":
            if name not in described:
                raise archive.ArchiveError(f"the archive holds table {name}, which its manifest does not list")
            if name in skipped:
                continue
            table, cols = quoted(conn, name, described[name])
            with conn.cursor() as cur:
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                    for block in entry.blocks():
                        copy.write(block)
                        read = moved(name, read)
                counts[name] = cur.rowcount
        elif kind == "file":
            target = (staging / name).resolve()
            if not target.is_relative_to(staging.resolve()) or not name:
                raise archive.ArchiveError(f"the archive names a file outside the data directory: {name!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, int(entry.meta.get("mode", 0o600)) & 0o777)
            with os.fdopen(fd, "wb") as f:
                for block in entry.blocks():
                    f.write(block)
            files += 1
        elif kind == "counts":
            want = {str(k): int(v) for k, v in entry.meta["rows"].items() if k not in skipped}
            if want != counts:
                wrong = sorted(k for k in set(want) | set(counts) if want.get(k) != counts.get(k))
                raise archive.ArchiveError(f"the archive's tables do not hold the rows it counted ({', '.join(wrong)})")
        else:
            raise archive.ArchiveError(f"the archive holds an entry this DPG does not know: {entry.name}")
        read = moved(entry.name, read)
    present = {str(r[0]) for r in conn.execute(
        "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")}
    for name, value in manifest["sequences"].items():
        if name not in present:  # a skipped table's
            continue
        conn.execute("SELECT setval(quote_ident(%s)::regclass, %s, true)", (name, value))
    return manifest, sum(counts.values()), files, skipped


def mark_verified(path: Path, ok: bool, detail: str) -> Path:
    """Write ``<archive>.verified.json`` beside the archive: ``{"ok", "verified_at", "detail"}``."""
    mark = path.with_name(path.name + VERIFIED)
    tmp = mark.with_name(f".{mark.name}.part")
    tmp.write_text(json.dumps({"ok": ok, "verified_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "detail": detail}) + "\n")
    os.replace(tmp, mark)
    return mark


def verify(path: Path, key: bytes, server_url: str, progress: Progress | None = None) -> Restored:
    """Restore the archive into a scratch database (and directory) on the server of ``server_url``,
    rebuild its state, and drop both; the result says whether the state hash matched."""
    scratch = db.create_scratch(server_url, "dpg_backup_verify")
    try:
        with tempfile.TemporaryDirectory(prefix="dpg-backup-verify-") as tmp:
            return restore(path, key, scratch, Path(tmp), progress=progress, record=False)
    finally:
        db.drop(scratch)
