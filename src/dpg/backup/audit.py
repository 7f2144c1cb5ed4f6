"""The audit record of a backup or a restore, written when the exchange keeps an audit log."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import psycopg

log = logging.getLogger("dpg.backup")


def audit(url: str, actor: str, action: str, details: dict[str, Any]) -> None:
    """Record ``action`` in the audit log (``dpg.system.audit.record``) when the exchange has one;
    else nothing. A failure to record is logged, never raised: the backup itself is done."""
    try:
        recorder = importlib.import_module("dpg.system.audit")
    except ImportError:
        return
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT to_regclass('audit_log') IS NOT NULL").fetchone()
            if row and row[0]:
                # AUDIT: the one call site of the audit log for backups and restores
                recorder.record(conn, actor, action, details)
                conn.commit()
    except Exception:
        log.exception("event=audit_not_recorded action=%s", action)
