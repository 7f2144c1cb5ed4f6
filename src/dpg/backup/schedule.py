"""The backups of a running exchange: an archive every DPG_BACKUP_EVERY seconds (at multiples of it,
UTC: daily at 00:00 by default, and at start when the newest is older than that), the newest
DPG_BACKUP_KEEP kept, and the journal shipped every DPG_BACKUP_SHIP_EVERY seconds after the newest
archive."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from dpg.backup import shipping
from dpg.backup.dump import SUFFIX, archive_seq, kept_apart, take
from dpg.backup.restore import VERIFIED
from dpg.config import Settings

log = logging.getLogger("dpg.backup")


def archives(backups: Path) -> list[tuple[int, Path]]:
    """The archives in ``backups`` with their last seq, oldest first (by name: time, then seq)."""
    if not backups.is_dir():
        return []
    out = []
    for p in sorted(backups.iterdir()):
        s = archive_seq(p)
        if s is not None and p.name.endswith(SUFFIX):
            out.append((s, p))
    return out


def prune(backups: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` archives, and the shipped journal files the oldest kept
    archive holds whole. Returns what was deleted."""
    kept = archives(backups)
    old = [p for _, p in kept[:-keep]] if len(kept) > keep else []
    gone = list(old)
    for p in old:
        p.unlink(missing_ok=True)
        mark = p.with_name(p.name + VERIFIED)
        if mark.exists():
            mark.unlink(missing_ok=True)
            gone.append(mark)
    if len(kept) > len(old):
        floor = kept[len(old)][0]
        for f in shipping.shipped(backups / shipping.DIR):
            if f.last <= floor:
                f.path.unlink(missing_ok=True)
                gone.append(f.path)
    return gone


class BackupSchedule:
    """A thread taking the archives and shipping the journal of the exchange at ``url``."""

    def __init__(self, settings: Settings, url: str, *, since: float | None = None) -> None:
        self.settings = settings
        self.url = url
        self.backups = settings.backups()
        self.leave_out = kept_apart(settings)
        self.since = time.time() if since is None else since  # without an archive, the first is due a multiple later
        self.shipped_seq: int | None = None  # the last command shipped (or in the newest archive)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dpg-backups", daemon=True)

    def start(self) -> None:
        if self.settings.backup_every or self.settings.backup_ship_every:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def due(self, now: float) -> bool:
        """Whether an archive is to be taken: a multiple of DPG_BACKUP_EVERY passed since the newest
        (or, with none yet, since the schedule started)."""
        every = self.settings.backup_every
        if not every:
            return False
        newest = archives(self.backups)
        last = newest[-1][1].stat().st_mtime if newest else self.since
        return int(now // every) > int(last // every)

    def step(self, now: float, ship: bool = True) -> None:
        """One round: an archive if one is due; then (``ship``) the journal after the newest archive
        or the last shipped file, if shipping is on and there is an archive to follow."""
        if self.due(now):
            key = self.settings.backup_key_bytes(create=True)
            taken = take(self.url, self.settings.data_dir, key, self.backups, leave_out=self.leave_out)
            prune(self.backups, self.settings.backup_keep)
            self.shipped_seq = max(self.shipped_seq or 0, taken.seq)
        if not ship or not self.settings.backup_ship_every:
            return
        if self.shipped_seq is None:
            newest = archives(self.backups)
            if not newest:
                return
            self.shipped_seq = max([newest[-1][0], *(f.last for f in shipping.shipped(self.backups / shipping.DIR))])
        key = self.settings.backup_key_bytes(create=True)
        while (f := shipping.ship(self.url, key, self.backups, self.shipped_seq)) is not None:
            self.shipped_seq = f.last

    RETRY_S = 300.0  # after a failure (disk full, database away), the next try

    def _run(self) -> None:
        last_ship = 0.0
        retry_at = 0.0
        while not self._stop.wait(1.0):
            now = time.time()
            ship = bool(self.settings.backup_ship_every) and now - last_ship >= self.settings.backup_ship_every
            if now < retry_at or (not ship and not self.due(now)):
                continue
            try:
                self.step(now, ship)
            except Exception:
                log.exception("event=backup_failed retry_in_s=%.0f", self.RETRY_S)
                retry_at = now + self.RETRY_S
            if ship:
                last_ship = now
