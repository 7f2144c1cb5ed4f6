"""The mailer against a real SMTP server (aiosmtpd, started here on 127.0.0.1 with STARTTLS and a
certificate made for the test): delivered, recorded as sent with the link's token withheld from
the stored copy; refused credentials, a server without STARTTLS and no server at all are recorded
as failed. Without an SMTP URL the outbox is the delivery, and ``dpg mail`` shows it."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import re
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg_pool import AsyncConnectionPool

from dpg.mail import WITHHELD, Mailer, SmtpServer, sender_address
from tests.api.client import dpg_cli, free_port

USER, SECRET = "dpg", "smtp p@ss:word"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d / "cert.pem", d / "key.pem"


class Inbox:
    """aiosmtpd's handler: what the server accepted."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER.encode(), SECRET.encode())
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535 to a refusal


@pytest.fixture
def smtp(tls: tuple[Path, Path]) -> Iterator[tuple[int, Inbox]]:
    """An SMTP server that requires STARTTLS and a login: (port, what it received)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls)
    inbox = Inbox()
    port = free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                        authenticator=_authenticator, auth_required=True)
    server.start()
    try:
        yield port, inbox
    finally:
        server.stop()


@pytest.fixture
def plain_smtp() -> Iterator[tuple[int, Inbox]]:
    """An SMTP server without TLS or login (a relay on this machine)."""
    inbox = Inbox()
    port = free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield port, inbox
    finally:
        server.stop()


def client_tls(tls: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls[0]))


def send(pg_url: str, smtp_url: str, *mails: tuple[str, str, str, tuple[str, ...]],
         context: ssl.SSLContext | None = None) -> list[int]:
    async def main() -> list[int]:
        async with AsyncConnectionPool(pg_url, min_size=1, max_size=2, open=False) as pool:
            mailer = Mailer(pool, smtp_url=smtp_url, sender=sender_address("bank@dpg.example"), ssl_context=context,
                            timeout_s=10)
            ids = [await mailer.send(to, subject, text, withhold=withhold) for to, subject, text, withhold in mails]
            await mailer.drain()
            return ids

    return asyncio.run(main())


def outbox(pg_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT id, to_address, subject, body, status, error, sent_at FROM outbox ORDER BY id"
                            ).fetchall()


LINK = "https://dpg.example/verify-email?token=" + "T" * 43


def test_delivered_over_starttls_with_a_login_and_recorded_as_sent(pg_url: str, smtp: tuple[int, Inbox],
                                                                 tls: tuple[Path, Path]) -> None:
    port, inbox = smtp
    url = f"smtp://{USER}:smtp%20p%40ss%3Aword@127.0.0.1:{port}"
    [mail_id] = send(pg_url, url, ("alice@example.com", "Verify  your\naddress", f"Open {LINK} within 24 h.\n",
                                   ("T" * 43,)), context=client_tls(tls))
    [(mail_from, rcpt, msg)] = inbox.messages
    assert mail_from == "bank@dpg.example" and rcpt == ["alice@example.com"]
    assert msg["From"] == "DPG <bank@dpg.example>" and msg["To"] == "alice@example.com"
    assert msg["Subject"] == "Verify your address"  # folded to one line
    assert LINK in msg.get_payload(decode=True).decode()  # the recipient gets the whole link
    [(i, to, subject, body, status, error, sent_at)] = outbox(pg_url)
    assert (i, to, subject, status, error) == (mail_id, "alice@example.com", "Verify your address", "sent", None)
    assert sent_at is not None
    assert "T" * 43 not in body and WITHHELD in body  # the stored copy keeps no usable link


def test_refused_login_no_starttls_and_no_server_are_recorded_as_failed(
        pg_url: str, smtp: tuple[int, Inbox], plain_smtp: tuple[int, Inbox], tls: tuple[Path, Path]) -> None:
    port, inbox = smtp
    plain_port, plain_inbox = plain_smtp
    send(pg_url, f"smtp://{USER}:wrong@127.0.0.1:{port}", ("a@example.com", "s", "one", ()), context=client_tls(tls))
    # a server that offers no STARTTLS never sees the credentials (nor the message)
    send(pg_url, f"smtp://{USER}:secret@127.0.0.1:{plain_port}", ("b@example.com", "s", "two", ()))
    send(pg_url, f"smtp://127.0.0.1:{free_port()}", ("c@example.com", "s", "three", ()))
    # a certificate the client does not trust
    send(pg_url, f"smtp://{USER}:x@127.0.0.1:{port}", ("d@example.com", "s", "four", ()))
    rows = outbox(pg_url)
    assert [(r[1], r[4]) for r in rows] == [("a@example.com", "failed"), ("b@example.com", "failed"),
                                            ("c@example.com", "failed"), ("d@example.com", "failed")]
    assert "SMTPAuthenticationError" in rows[0][5]
    assert "STARTTLS" in rows[1][5] or "SMTPNotSupportedError" in rows[1][5]
    assert "ConnectionRefusedError" in rows[2][5]
    assert "SSLCertVerificationError" in rows[3][5]
    assert all(SECRET not in (r[5] or "") for r in rows)
    assert inbox.messages == [] and plain_inbox.messages == []


def test_a_relay_without_tls(pg_url: str, plain_smtp: tuple[int, Inbox]) -> None:
    port, inbox = plain_smtp
    send(pg_url, f"smtp+plain://127.0.0.1:{port}", ("e@example.com", "hello", "text", ()))
    assert [m[1] for m in inbox.messages] == [["e@example.com"]]
    assert outbox(pg_url)[0][4] == "sent"


def test_smtp_urls() -> None:
    assert SmtpServer.parse("smtp://u:p%40x@mail.example") == SmtpServer("mail.example", 587, "starttls", "u", "p@x")
    assert SmtpServer.parse("smtps://mail.example") == SmtpServer("mail.example", 465, "tls")
    assert SmtpServer.parse("smtp+plain://127.0.0.1:2525") == SmtpServer("127.0.0.1", 2525, "none")
    for bad, what in [("http://mail.example", "scheme"), ("smtp://", "no host"), ("smtp://h:99999", "not a URL"),
                      ("smtp+plain://u:p@h", "no credentials")]:
        with pytest.raises(ValueError, match=what) as info:
            SmtpServer.parse(bad)
        assert "p@" not in str(info.value)
    assert sender_address("") == "DPG <no-reply@dpg.local>"
    assert sender_address("ops@x.example") == "DPG <ops@x.example>"
    assert sender_address("Desk <ops@x.example>") == "Desk <ops@x.example>"


def test_without_smtp_the_outbox_is_the_delivery_and_dpg_mail_shows_it(pg_url: str, tmp_path: Path) -> None:
    ids = send(pg_url, "", ("alice@example.com", "Verify your address", f"Open {LINK}\n", ("T" * 43,)),
               ("bob@example.com", "Reset your password", "Another message.\n", ()))
    rows = outbox(pg_url)
    assert [r[4] for r in rows] == ["kept", "kept"]
    assert LINK in rows[0][3]  # the outbox is the mailbox: the link is kept whole
    env = {"DPG_DATABASE_URL": pg_url, "DPG_DATA_DIR": str(tmp_path)}
    listed = dpg_cli(env, "mail")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == str(ids[1])  # newest first
    assert "bob@example.com" in lines[0] and "Reset your password" in lines[0] and "kept" in lines[0]
    as_json = [json.loads(x) for x in dpg_cli(env, "mail", "--json", "--limit", "1").stdout.splitlines()]
    assert [m["id"] for m in as_json] == [ids[1]]
    shown = dpg_cli(env, "mail", "show", str(ids[0]))
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^To: alice@example.com$", shown.stdout, re.M) and LINK in shown.stdout
    missing = dpg_cli(env, "mail", "show", "999999")
    assert missing.returncode == 1 and "no message 999999" in missing.stderr
    bad = dpg_cli(env, "mail", "show", "x")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
