"""Journal shipping: the journal's new commands, as they are committed, written to encrypted files
beside the backups (``journal-FIRST-LAST.dpgj``, each an archive of one entry), so that a restore
loses nothing acknowledged before the last file shipped; and their replay onto a restored database."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from dpg.backup import archive
from dpg.backup.dump import JOURNAL_SUFFIX

log = logging.getLogger("dpg.backup")

DIR = "journal"  # the shipped files' folder, in the backups' directory


@dataclass(frozen=True, slots=True)
class Shipped:
    path: Path
    first: int
    last: int


def shipped(folder: Path) -> list[Shipped]:
    """The shipped journal files in ``folder`` (``journal/`` of the backups' directory), by their first seq."""
    out = []
    if folder.is_dir():
        for p in folder.iterdir():
            parts = p.name.removesuffix(JOURNAL_SUFFIX).split("-")
            if p.name.endswith(JOURNAL_SUFFIX) and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                out.append(Shipped(p, int(parts[1]), int(parts[2])))
    return sorted(out, key=lambda s: (s.first, s.last))


def ship(url: str, key: bytes, backups: Path, after: int, most: int = 1_000_000) -> Shipped | None:
    """One file of the journal's commands after ``after`` (at most ``most`` of them), or None when
    there are none yet. The file appears under its name only once complete and on disk."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
        last = min(int(row[0]) if row else 0, after + most)
        if last <= after:
            return None
        folder = backups / DIR
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"journal-{after + 1:012d}-{last:012d}{JOURNAL_SUFFIX}"
        part = final.with_name(f".{final.name}.part")
        with archive.create(part) as out, conn.cursor() as cur:
            sealed = archive.SealedWriter(out, key, {"kind": "dpg-journal", "first": after + 1, "last": last})
            w = archive.EntryWriter(sealed)
            w.begin("journal", {"first": after + 1, "last": last})
            with cur.copy("COPY (SELECT seq, ts, payload FROM journal WHERE seq > %s AND seq <= %s ORDER BY seq)"
                          " TO STDOUT (FORMAT BINARY)", (after, last)) as copy:
                for block in copy:
                    w.data(block)
            w.end()
            w.close()
            out.flush()
            os.fsync(out.fileno())
    os.replace(part, final)
    log.info("event=journal_shipped path=%s first=%d last=%d", final, after + 1, last)
    return Shipped(final, after + 1, last)


def replay_shipped(conn: psycopg.Connection[Any], key: bytes, files: list[Shipped]) -> int:
    """Append to the journal of ``conn`` the commands of the shipped files that follow it, each file
    in a transaction of its own; returns the journal's last seq. ``archive.ArchiveError`` for a file
    that does not open or leaves a gap."""
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
    at = int(row[0]) if row else 0
    conn.commit()
    for f in files:
        if f.last <= at:
            continue
        if f.first > at + 1:
            raise archive.ArchiveError(f"the shipped journal files leave a gap: after seq {at} the next file is "
                                       f"{f.path.name}")
        with f.path.open("rb") as src:
            reader = archive.SealedReader(src, key)
            conn.execute("CREATE TEMPORARY TABLE IF NOT EXISTS shipped_journal (seq bigint, ts bigint, payload bytea)"
                         " ON COMMIT DELETE ROWS")
            with conn.cursor() as cur:
                for entry in archive.entries(reader):
                    if entry.name != "journal":
                        raise archive.ArchiveError(f"{f.path.name}: not a shipped journal file (entry {entry.name})")
                    with cur.copy("COPY shipped_journal (seq, ts, payload) FROM STDIN (FORMAT BINARY)") as copy:
                        for block in entry.blocks():
                            copy.write(block)
                cur.execute("INSERT INTO journal (seq, ts, payload) SELECT seq, ts, payload FROM shipped_journal"
                            " WHERE seq > %s ORDER BY seq", (at,))
                added = cur.rowcount
                row = cur.execute("SELECT count(*), coalesce(max(seq), 0) FROM journal WHERE seq > %s",
                                  (at,)).fetchone()
            if row is None or int(row[0]) != added or int(row[1]) != at + added or at + added != f.last:
                conn.rollback()
                raise archive.ArchiveError(f"{f.path.name}: its commands do not follow seq {at} without a gap")
            conn.commit()
            at = f.last
    return at
