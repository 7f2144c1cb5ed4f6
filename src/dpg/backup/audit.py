"""The audit record of a backup, a verification or a restore, written when the exchange keeps an
audit log (``dpg.store.audit``, its ``audit_log`` table)."""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from dpg.store import audit as audit_log

log = logging.getLogger("dpg.backup")


def audit(url: str, action: str, details: dict[str, Any]) -> None:
    """Append ``action`` (``backup.create``, ``backup.verify``, ``backup.restore``) to the audit log
    of the database at ``url``, by whoever runs this process, when it has one; else nothing. A
    failure to record is logged, never raised: the backup itself is done."""
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT to_regclass('audit_log') IS NOT NULL").fetchone()
        if row and row[0]:
            audit_log.record(url, audit_log.cli_actor(), action, details)
    except Exception:
        log.exception("event=audit_not_recorded action=%s", action)
