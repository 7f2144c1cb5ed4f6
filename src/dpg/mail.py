"""Mail the exchange sends to its users (verification and password-reset links, notices): every
message is written to the ``outbox`` table; with ``DPG_SMTP_URL`` it is also delivered by SMTP.

Without an SMTP server (the embedded default) the outbox is the delivery: ``dpg mail`` lists the
newest messages and ``dpg mail show ID`` prints one, so ``make up`` needs no mail server. With
one, delivery runs in a background thread (stdlib ``smtplib``) after the outbox row is written;
the row then says ``sent`` or ``failed``. Secrets a message carries (a link's token) are kept out
of the stored copy of a message that SMTP delivered, and out of every log line.

SMTP URLs: ``smtp://[user:password@]host[:port]`` (STARTTLS, required; port 587 by default),
``smtps://…`` (TLS from the start; port 465), ``smtp+plain://host[:port]`` (no TLS, for a relay on
the same machine; no credentials; port 25).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("dpg.mail")

Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]

DEFAULT_FROM = "DPG <no-reply@dpg.local>"
SUBJECT_MAX = 200
WITHHELD = "[withheld: delivered by mail only]"


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to deliver: parsed from an SMTP URL by ``parse``."""

    host: str
    port: int
    tls: str  # "starttls", "tls" or "none"
    user: str = ""
    password: str = ""

    @staticmethod
    def parse(url: str) -> SmtpServer:
        """ValueError (naming the problem, never the password) for a URL that is not one of the
        three forms."""
        try:
            u = urlsplit(url.strip())
            port = u.port
        except ValueError:
            raise ValueError("DPG_SMTP_URL: not a URL") from None
        modes = {"smtp": ("starttls", 587), "smtps": ("tls", 465), "smtp+plain": ("none", 25)}
        if u.scheme not in modes:
            raise ValueError("DPG_SMTP_URL: the scheme must be smtp (STARTTLS), smtps (TLS) or smtp+plain")
        if not u.hostname:
            raise ValueError("DPG_SMTP_URL: no host")
        tls, default_port = modes[u.scheme]
        user, password = unquote(u.username or ""), unquote(u.password or "")
        if tls == "none" and (user or password):
            raise ValueError("DPG_SMTP_URL: smtp+plain sends no credentials; use smtp:// (STARTTLS)")
        return SmtpServer(u.hostname, port or default_port, tls, user, password)


class Mailer:
    """``send`` writes a message to the outbox and, with an SMTP server, delivers it in the
    background; ``drain`` waits for the deliveries under way (tests, shutdown)."""

    def __init__(self, pool: Pool, *, smtp_url: str = "", sender: str = DEFAULT_FROM,
                 ssl_context: ssl.SSLContext | None = None, timeout_s: float = 30.0) -> None:
        self.pool = pool
        self.server = SmtpServer.parse(smtp_url) if smtp_url else None
        self.sender = sender or DEFAULT_FROM
        self.ssl_context = ssl_context
        self.timeout_s = timeout_s
        self._deliveries: set[asyncio.Task[None]] = set()

    async def send(self, to: str, subject: str, text: str, *, withhold: tuple[str, ...] = ()) -> int:
        """The outbox id of the new message to ``to``. ``withhold``: parts of ``text`` (a token)
        that the stored copy keeps only while the outbox is the delivery."""
        subject = " ".join(subject.split())[:SUBJECT_MAX]
        stored = text
        if self.server is not None:
            for s in withhold:
                stored = stored.replace(s, WITHHELD)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO outbox (to_address, subject, body, status) VALUES (%s, %s, %s, %s) RETURNING id",
                (to, subject, stored, "kept" if self.server is None else "queued"))
            row = await cur.fetchone()
        assert row is not None
        mail_id = int(row[0])
        if self.server is None:
            log.info("event=mail_kept id=%d", mail_id)
            return mail_id
        task = asyncio.create_task(self._deliver(self.server, mail_id, to, subject, text))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        return mail_id

    async def drain(self) -> None:
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    async def _deliver(self, server: SmtpServer, mail_id: int, to: str, subject: str, text: str) -> None:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = make_msgid(domain="dpg.local")
        msg.set_content(text)
        error: str | None = None
        try:
            await asyncio.to_thread(self._smtp_send, server, msg)
        except Exception as e:  # any failure is the message's status, not the caller's
            error = f"{type(e).__name__}: {e}"[:500]
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE outbox SET status = %s, error = %s, sent_at = %s WHERE id = %s",
                               ("failed" if error else "sent", error, None if error else datetime.now(UTC), mail_id))
        if error:
            log.warning("event=mail_failed id=%d host=%s error=%r", mail_id, server.host, error)
        else:
            log.info("event=mail_sent id=%d host=%s", mail_id, server.host)

    def _smtp_send(self, server: SmtpServer, msg: EmailMessage) -> None:
        context = self.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if server.tls == "tls":
            smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=self.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=self.timeout_s)
        with smtp:
            if server.tls == "starttls":
                smtp.starttls(context=context)  # SMTPNotSupportedError when the server offers none
            if server.user:
                smtp.login(server.user, server.password)
            smtp.send_message(msg)


def sender_address(name_and_address: str) -> str:
    """``DPG_MAIL_FROM`` as given, or ``DPG <address>`` for a bare address."""
    text = name_and_address.strip()
    if not text:
        return DEFAULT_FROM
    return text if "<" in text else formataddr(("DPG", text))


# --- reading the outbox (dpg mail) ------------------------------------------------------------


def newest(url: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest messages, newest first, without their bodies."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, created_at, to_address, subject, status FROM outbox ORDER BY id DESC LIMIT %s",
                            (limit,)).fetchall()
    return [{"id": int(i), "created_at": c.isoformat(timespec="seconds"), "to": t, "subject": s, "status": st}
            for i, c, t, s, st in rows]


def message(url: str, mail_id: int) -> dict[str, Any] | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT id, created_at, to_address, subject, body, status, error, sent_at FROM outbox"
                           " WHERE id = %s", (mail_id,)).fetchone()
    if row is None:
        return None
    i, created, to, subject, text, status, error, sent = row
    return {"id": int(i), "created_at": created.isoformat(timespec="seconds"), "to": to, "subject": subject,
            "body": text, "status": status, "error": error,
            "sent_at": sent.isoformat(timespec="seconds") if sent else None}
