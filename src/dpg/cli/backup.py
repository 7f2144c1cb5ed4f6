"""The ``dpg backup`` commands (take an archive, verify one) and ``dpg restore``."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from dpg.cli.context import fail, target
from dpg.config import Settings

backup_app = typer.Typer(help="Encrypted backups: `dpg backup [--to DIR]` takes one (its path is the last line); "
                              "`dpg backup verify ARCHIVE` checks one by a restore into a scratch database",
                         invoke_without_command=True)


class Bar:
    """A rich progress bar (on stderr: stdout keeps what a script reads) of bytes done."""

    def __init__(self, description: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[label]}"),
                                 console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task(description, total=None, label="")

    def start(self, total: int) -> None:
        self.progress.update(self.task, total=max(total, 1))

    def advance(self, label: str, n: int) -> None:
        self.progress.update(self.task, advance=n, label=label)


@contextmanager
def bar(description: str) -> Iterator[Bar]:
    b = Bar(description)
    with b.progress:
        yield b


def backup_key(settings: Settings, create: bool) -> bytes:
    try:
        return settings.backup_key_bytes(create=create)
    except ValueError as e:
        raise fail(f"{e}; the key is the one the archives were made with (`dpg backup` keeps it in "
                   "DPG_DATA_DIR/backup.key unless DPG_BACKUP_KEY names it)", 1) from None


@backup_app.callback()
def backup(
    ctx: typer.Context,
    to: Annotated[Path | None, typer.Option("--to", help="Directory for the archive (default DPG_BACKUP_DIR, "
                                                        "else DPG_DATA_DIR/backups)")] = None,
) -> None:
    """Take an encrypted backup of the exchange: journal, newest snapshot, database (but sessions) and
    data files. Prints the archive's path as its last line."""
    if ctx.invoked_subcommand is not None:
        return
    from dpg.backup.dump import kept_apart, take

    exchange = target()
    settings: Settings = exchange.settings
    made = settings.backup_key_path()
    fresh = made is not None and not made.exists()
    key = backup_key(settings, create=True)
    if fresh:
        typer.echo(f"a new backup key was made in {made}: copy it somewhere apart from this machine (DPG_BACKUP_KEY "
                   "names it); no archive opens without it", err=True)
    with bar("backup") as progress:
        taken = take(exchange.url, settings.data_dir, key, (to or settings.backups()).resolve(),
                     leave_out=kept_apart(settings), progress=progress)
    typer.echo(f"seq {taken.seq}, state hash {taken.state_hash}, {taken.size} bytes")
    typer.echo(str(taken.path))


def _opened(work: Any) -> Any:
    from dpg.backup.archive import ArchiveError
    from dpg.backup.restore import NotEmpty

    try:
        return work()
    except (ArchiveError, NotEmpty) as e:
        raise fail(str(e), 1) from None


def _check_header(path: Path, key: bytes) -> None:
    from dpg.backup.archive import SealedReader

    with path.open("rb") as f:
        SealedReader(f, key)


def _archive(path: Path) -> Path:
    if not path.is_file():
        raise fail(f"{path}: no such archive", 1)
    return path.resolve()


@backup_app.command("verify")
def verify(archive: Annotated[Path, typer.Argument(help="The archive (.dpgb)")]) -> None:
    """Restore the archive into a scratch database and check its state hash (exit 0 only if it matches).
    Writes ARCHIVE.verified.json beside it (what the operator's console shows)."""
    from dpg.backup.archive import ArchiveError
    from dpg.backup.restore import mark_verified
    from dpg.backup.restore import verify as check
    from dpg.store import db

    settings = Settings.from_env()
    path = _archive(archive)
    key = backup_key(settings, create=False)
    exchange = settings.database_url or (db.embedded_url(settings.data_dir) if (settings.data_dir / "pg").is_dir()
                                         else "")
    # the scratch database goes on the exchange's server, else on a throwaway embedded one
    server = exchange or db.embedded_url(Path(tempfile.mkdtemp(prefix="dpg-backup-verify-pg-")), "postgres")
    try:
        with bar("verify") as progress:
            r = check(path, key, server, progress)
    except ArchiveError as e:
        mark_verified(path, False, str(e))
        _record(exchange, {"archive": path.name, "ok": False, "detail": str(e)})
        raise fail(str(e), 1) from None
    detail = (f"seq {r.archive_seq}: state hash {r.replayed_archive_hash} "
              + ("as recorded" if r.matches else f"is not the recorded {r.archive_state_hash}"))
    mark_verified(path, r.matches, detail)
    _record(exchange, {"archive": path.name, "ok": r.matches, "seq": r.archive_seq, "state_hash": r.archive_state_hash})
    typer.echo(json.dumps({"archive": str(path), "seq": r.archive_seq, "state_hash": r.archive_state_hash,
                           "restored_state_hash": r.replayed_archive_hash, "tables": r.tables, "rows": r.rows,
                           "files": r.files, "verified": r.matches}))
    if not r.matches:
        raise fail(f"the restored state hash {r.replayed_archive_hash} is not the archive's {r.archive_state_hash}", 1)


def _record(url: str, details: dict[str, Any]) -> None:
    """``backup.verify`` in the audit log of the exchange's database, when there is one."""
    from dpg.backup.audit import audit
    from dpg.store import db

    if url and db.has_schema(url):
        audit(url, "backup.verify", details)


def restore(
    archive: Annotated[Path, typer.Argument(help="The archive (.dpgb)")],
    journal: Annotated[Path | None, typer.Option(help="Folder of shipped journal files to replay after the archive "
                                                      "(default: journal/ beside the archive, if there)")] = None,
    no_journal: Annotated[bool, typer.Option("--no-journal", help="Restore the archive's state only")] = False,
) -> None:
    """Restore a backup into an EMPTY database (DPG_DATABASE_URL, else the embedded one) and data
    directory (DPG_DATA_DIR), then the shipped journal after it; prints the state hash."""
    from dpg.backup import restore as r
    from dpg.backup import shipping
    from dpg.store import db

    settings = Settings.from_env()
    path = _archive(archive)
    key = backup_key(settings, create=False)
    if journal is not None and not journal.is_dir():
        raise fail(f"{journal}: no such folder of shipped journal files", 1)
    files = [] if no_journal else shipping.shipped(journal or path.parent / shipping.DIR)
    _opened(lambda: _check_header(path, key))  # a wrong file or key is refused before anything is made
    allow = [path, *([k] if (k := settings.backup_key_path()) is not None else [])]
    if not settings.database_url:  # the embedded database a failed restore made: its database is checked below
        allow.append(settings.data_dir / "pg")
    _opened(lambda: r.check_empty_directory(settings.data_dir, allow))
    url = settings.database_url or db.embedded_url(settings.data_dir)
    _opened(lambda: r.check_empty_database(url))
    with bar("restore") as progress:
        done = _opened(lambda: r.restore(path, key, url, settings.data_dir, shipped=files, progress=progress))
    out = {"archive": str(path), "archive_seq": done.archive_seq, "archive_state_hash": done.archive_state_hash,
           "restored_archive_state_hash": done.replayed_archive_hash, "archive_verified": done.matches,
           "shipped_files": len(files), "seq": done.seq, "state_hash": done.state_hash, "tables": done.tables,
           "rows": done.rows, "files": done.files, "skipped_tables": done.skipped}
    typer.echo(json.dumps(out))
    if not done.matches:
        raise fail(f"the restored state hash at seq {done.archive_seq} is not the archive's", 1)
