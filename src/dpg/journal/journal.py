"""The journal on PostgreSQL: append batches of sequenced commands (one transaction each, group
commit), read them back in order, and keep snapshots of the engine state."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import psycopg

from dpg.core.commands import Command
from dpg.core.events import Event

Row = tuple[int, int, bytes]  # (seq, ts, payload)

# PostgreSQL's binary COPY: a signature, then per row the field count and each field as its length
# and bytes (int8 big-endian for seq and ts, the payload as it is), then a trailer. The sequencer's
# engine thread encodes its batch's rows while the journal thread commits the previous batch; the
# journal thread sends them as one buffer.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + bytes(8)  # signature, flags 0, no header extension
COPY_TRAILER = b"\xff\xff"
COPY_ROW_HEAD = struct.Struct(">hiqiqi").pack  # 3 fields; 8, seq; 8, ts; len(payload) (payload follows)


def copy_row(seq: int, ts: int, payload: bytes) -> bytes:
    """One journal row in binary COPY format."""
    return COPY_ROW_HEAD(3, 8, seq, 8, ts, len(payload)) + payload

# a connection to a server that vanished (network cut, host down) fails within seconds instead of
# waiting for the kernel's TCP timeouts (minutes): the journal halts, and the process can stop
LIVELINESS: dict[str, Any] = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
              "keepalives_count": 3, "tcp_user_timeout": 10_000}


class Applied(NamedTuple):
    """One command as applied: what sinks receive, in sequence order, after commit. A named tuple:
    one is made for every command on the engine thread, and a tuple is made several times faster
    than a frozen dataclass."""

    seq: int
    ts: int
    cmd: Command
    events: list[Event]



def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """A connection with the liveness settings above (TCP only: ignored on a Unix socket)."""
    return psycopg.connect(url, **LIVELINESS, **kwargs)


class JournalGap(RuntimeError):
    """The journal is not contiguous where it must be: never replay past a hole."""


class Journal:
    """One connection. ``append`` is called by the single journal writer only."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = connect(url)

    def close(self) -> None:
        self.conn.close()

    def reconnect(self) -> None:
        """A new connection in place of one the server dropped (raises while it is unreachable)."""
        conn = connect(self.url)
        with contextlib.suppress(psycopg.Error):
            self.conn.close()
        self.conn = conn

    def append(self, rows: Sequence[Row], snapshot: tuple[int, str, bytes] | None = None) -> None:
        """Write a batch durably: returns only after COMMIT (synchronous_commit as configured on
        the server; on by default)."""
        self.append_encoded([copy_row(*row) for row in rows], snapshot)

    def append_encoded(self, rows: Sequence[bytes], snapshot: tuple[int, str, bytes] | None = None) -> None:
        """``append`` of rows already in binary COPY format (``copy_row``, or several joined): one
        COPY of one buffer, the snapshot if any, then COMMIT."""
        conn = self.conn
        with conn.cursor() as cur:
            if rows:
                with cur.copy("COPY journal (seq, ts, payload) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(b"".join((COPY_SIGNATURE, *rows, COPY_TRAILER)))
            if snapshot is not None:
                cur.execute(
                    "INSERT INTO snapshots (seq, state_hash, body) VALUES (%s, %s, %s) ON CONFLICT (seq) DO NOTHING",
                    snapshot,
                )
        conn.commit()

    def ping(self) -> None:
        """Raise unless the connection works."""
        self.conn.execute("SELECT 1")
        self.conn.commit()

    def save_snapshot(self, seq: int, state_hash: str, body: bytes) -> None:
        self.conn.execute(
            "INSERT INTO snapshots (seq, state_hash, body) VALUES (%s, %s, %s) ON CONFLICT (seq) DO NOTHING",
            (seq, state_hash, body),
        )
        self.conn.commit()

    def last_seq(self) -> int:
        row = self.conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
        self.conn.commit()
        return int(row[0]) if row else 0

    def latest_snapshot(self, at_most: int | None = None) -> tuple[int, str, bytes] | None:
        """The newest snapshot (with seq <= at_most when given)."""
        if at_most is None:
            row = self.conn.execute("SELECT seq, state_hash, body FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        else:
            row = self.conn.execute(
                "SELECT seq, state_hash, body FROM snapshots WHERE seq <= %s ORDER BY seq DESC LIMIT 1", (at_most,)
            ).fetchone()
        self.conn.commit()
        return (int(row[0]), str(row[1]), bytes(row[2])) if row else None

    def read(self, after: int, until: int | None = None, chunk: int = 50_000) -> Iterator[Row]:
        """Rows with seq > after (and <= until), in order, checked to be contiguous. The next chunk
        is fetched (binary rows, on this connection, by a helper thread) while this one is read."""
        expect = after + 1
        with ThreadPoolExecutor(1, thread_name_prefix="dpg-journal-read") as pool:
            span = self._span(expect, until, chunk)
            ahead = pool.submit(self._rows, *span) if span else None
            while ahead is not None and span is not None:
                rows = ahead.result()
                # fewer rows than asked: the end of the journal as committed now (a hole before later
                # rows shows up as a jump on the next read)
                span = self._span(span[1] + 1, until, chunk) if len(rows) == span[1] - span[0] + 1 else None
                ahead = pool.submit(self._rows, *span) if span else None
                for row in rows:
                    if row[0] != expect:
                        raise JournalGap(f"journal jumps from {expect - 1} to {row[0]}")
                    expect += 1
                    yield row

    @staticmethod
    def _span(lo: int, until: int | None, chunk: int) -> tuple[int, int] | None:
        if until is not None and lo > until:
            return None
        return lo, (lo + chunk - 1 if until is None else min(lo + chunk - 1, until))

    def _rows(self, lo: int, hi: int) -> list[Row]:
        with self.conn.cursor(binary=True) as cur:
            cur.execute("SELECT seq, ts, payload FROM journal WHERE seq BETWEEN %s AND %s ORDER BY seq", (lo, hi))
            rows: list[Row] = cur.fetchall()
        self.conn.commit()
        return rows
