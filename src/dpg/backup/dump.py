"""Taking a backup: one consistent read of the database (the journal to its last command, the newest
snapshot before it, every other table but the sessions) and the data directory's files, streamed
into one encrypted archive, with the state hash as of its last command."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg

from dpg.backup import archive
from dpg.backup.audit import audit
from dpg.config import Settings
from dpg.core import state
from dpg.journal.journal import Journal
from dpg.journal.recovery import recover

log = logging.getLogger("dpg.backup")

SUFFIX = ".dpgb"  # an archive
JOURNAL_SUFFIX = ".dpgj"  # a shipped journal file
# not in an archive: sessions (a restore signs everyone out), the migrations' own record (a restore
# applies the migrations)
EXCLUDED_TABLES = frozenset({"sessions", "schema_migrations"})
# nor these of the data directory: the embedded PostgreSQL (its databases are in the archive as
# tables), and the backups themselves
EXCLUDED_FILES = frozenset({"pg"})


class Progress(Protocol):
    """Told the work's expected size in bytes, then what was done."""

    def start(self, total: int) -> None: ...

    def advance(self, label: str, n: int) -> None: ...


class Quiet:
    """No progress shown."""

    def start(self, total: int) -> None:
        pass

    def advance(self, label: str, n: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Taken:
    path: Path
    seq: int  # the journal's last command in the archive
    state_hash: str  # the state as of that command
    size: int  # bytes of the archive


def archive_name(seq: int, at: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if at is None else at))
    return f"dpg-backup-{stamp}-seq{seq:012d}{SUFFIX}"


def archive_seq(path: Path) -> int | None:
    """The last journal seq an archive's name says it holds."""
    stem = path.name.removesuffix(SUFFIX)
    if not path.name.endswith(SUFFIX) or "-seq" not in stem:
        return None
    tail = stem.rsplit("-seq", 1)[1]
    return int(tail) if tail.isdigit() else None


def tables(conn: psycopg.Connection[Any]) -> list[tuple[str, list[str]]]:
    """The schema's tables (but the excluded ones) with their columns, each after those its foreign
    keys point to (the order a restore loads them in)."""
    names = [str(r[0]) for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")]
    names = [n for n in names if n not in EXCLUDED_TABLES]
    edges: dict[str, set[str]] = {n: set() for n in names}
    for child, parent in conn.execute(
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c"
            " JOIN pg_namespace s ON s.oid = c.connamespace WHERE c.contype = 'f' AND s.nspname = current_schema()"):
        if child in edges and parent in edges and child != parent:
            edges[child].add(parent)
    ordered: list[str] = []
    while edges:
        ready = sorted(n for n, deps in edges.items() if not deps - set(ordered))
        if not ready:
            raise RuntimeError(f"foreign keys form a cycle among {sorted(edges)}")
        for n in ready:
            ordered.append(n)
            del edges[n]
    out = []
    for name in ordered:
        cols = [str(r[0]) for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position", (name,))]
        out.append((name, cols))
    return out


def data_files(data_dir: Path, leave_out: list[Path]) -> Iterator[Path]:
    """The data directory's regular files, but the embedded database, the backups and the key."""
    if not data_dir.is_dir():
        return
    skip = {p.resolve() for p in leave_out}
    for root, dirs, files in os.walk(data_dir):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() not in skip
                         and not (here == data_dir and d in EXCLUDED_FILES))
        for f in sorted(files):
            p = here / f
            if p.is_file() and not p.is_symlink() and p.resolve() not in skip and not f.endswith(".part"):
                yield p


def kept_apart(settings: Settings) -> list[Path]:
    """What of the data directory never goes into an archive: the backups and the backup key."""
    key = settings.backup_key_path()
    return [settings.backups(), *([key] if key is not None else [])]


def quoted(conn: psycopg.Connection[Any], name: str, cols: list[str]) -> tuple[str, str]:
    """The table's and its columns' names quoted for SQL."""
    from psycopg import sql

    return (sql.Identifier(name).as_string(conn),
            ", ".join(sql.Identifier(c).as_string(conn) for c in cols))


def take(url: str, data_dir: Path, key: bytes, to: Path, *, leave_out: list[Path] | None = None,
         progress: Progress | None = None) -> Taken:
    """Write one archive into ``to`` (its name says its time and last seq) and return it. The
    archive appears under its name only once complete."""
    progress = progress or Quiet()
    to.mkdir(parents=True, exist_ok=True)
    leave = [to, *(leave_out or [])]
    with psycopg.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
        seq = int(row[0]) if row else 0
        # the newest snapshot, and the newest at or before the projections' checkpoint (where the
        # projection follower of the restored exchange starts its replay)
        kept = [int(r[0]) for r in conn.execute(
            "SELECT DISTINCT (SELECT max(s.seq) FROM snapshots s WHERE s.seq <= c.at) FROM"
            " (SELECT %s::bigint AS at UNION ALL SELECT min(seq) FROM projection_state) c", (seq,)) if r[0] is not None]
        migrations = [int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        schema = tables(conn)
        sequences = {str(r[0]): int(r[1]) for r in conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences"
            " WHERE schemaname = current_schema() AND last_value IS NOT NULL")}
        sizes = {str(r[0]): int(r[1]) for r in conn.execute(
            "SELECT tablename, pg_table_size(quote_ident(tablename)::regclass) FROM pg_tables"
            " WHERE schemaname = current_schema()")}
        files = list(data_files(data_dir, leave))
        # the rows up to ``seq`` are committed and never change: replayed on a connection of its own
        journal = Journal(url)
        try:
            digest = state.state_hash(recover(journal, until=seq))
        finally:
            journal.close()
        progress.start(sum(sizes.get(n, 0) for n, _ in schema) + sum(f.stat().st_size for f in files))
        manifest = {
            "kind": "dpg-backup", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seq": seq, "snapshots": sorted(kept), "state_hash": digest, "migrations": migrations,
            "tables": [{"name": n, "columns": c} for n, c in schema], "sequences": sequences,
            "files": len(files),
        }
        final = to / archive_name(seq)
        part = final.with_name(f".{final.name}.part")  # hidden (the console lists the folder) until complete
        counts: dict[str, int] = {}
        try:
            with archive.create(part) as out:
                sealed = archive.SealedWriter(out, key, {"kind": "dpg-backup", "seq": seq})
                w = archive.EntryWriter(sealed)
                w.entry("manifest", manifest)
                for name, cols in schema:
                    counts[name] = _dump_table(conn, w, name, cols, seq, kept, progress)
                for f in files:
                    rel = f.relative_to(data_dir).as_posix()
                    w.begin(f"file:{rel}", {"mode": f.stat().st_mode & 0o777})
                    with f.open("rb") as src:
                        while block := src.read(archive.CHUNK):
                            w.data(block)
                            progress.advance(rel, len(block))
                    w.end()
                w.entry("counts", {"rows": counts})
                w.close()
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        conn.rollback()
    os.replace(part, final)
    with contextlib.suppress(OSError):
        fd = os.open(to, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    log.info("event=backup_taken path=%s seq=%d state_hash=%s bytes=%d", final, seq, digest, sealed.size)
    audit(url, "backup.create", {"archive": final.name, "seq": seq, "state_hash": digest, "bytes": sealed.size})
    return Taken(final, seq, digest, sealed.size)


def _dump_table(conn: psycopg.Connection[Any], w: archive.EntryWriter, name: str, cols: list[str], seq: int,
                snapshots: list[int], progress: Progress) -> int:
    """One table's rows in PostgreSQL's binary COPY format; the journal up to ``seq``, of the
    snapshots only those at ``snapshots``."""
    table, columns = quoted(conn, name, cols)
    where = ""
    if name == "journal":
        where = f" WHERE seq <= {int(seq)}"
    elif name == "snapshots":
        where = f" WHERE seq IN ({', '.join(str(int(s)) for s in snapshots) or 'NULL'})"
    w.begin(f"table:{name}", {"columns": cols})
    with conn.cursor() as cur:
        with cur.copy(f"COPY (SELECT {columns} FROM {table}{where}) TO STDOUT (FORMAT BINARY)") as copy:
            for block in copy:
                w.data(block)
                progress.advance(name, len(block))
        rows = cur.rowcount
    w.end()
    return rows
