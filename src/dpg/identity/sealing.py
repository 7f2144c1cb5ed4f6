"""Sealed secrets: AES-256-GCM with the exchange's one secret key (DPG_SECRET_KEY, else a key file
in the data directory), for the TOTP and API-key secrets stored in the database."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("dpg.identity")


class SecretBox:
    """AES-256-GCM with one 32-byte key. ``seal`` gives nonce (12 bytes) ‖ ciphertext ‖ tag;
    ``aad`` binds a sealed value to its place (a different ``aad`` fails to open)."""

    ENV = "DPG_SECRET_KEY"
    FILE = "secret.key"
    NONCE_BYTES = 12

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a SecretBox key is 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_env_or_file(cls, data_dir: Path) -> SecretBox:
        """The key from ``DPG_SECRET_KEY`` (64 hex characters), else from ``data_dir/secret.key``
        (the same form), which is created with a new random key and mode 0600 when missing."""
        text = os.environ.get(cls.ENV, "").strip()
        if text:
            return cls(parse_key(text, cls.ENV))
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / cls.FILE
        if not path.exists():
            create_key_file(path)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("event=secret_key_readable_by_others path=%s mode=%o", path, mode)
        return cls(parse_key(path.read_text().strip(), str(path)))

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(self.NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad or None)

    def open(self, sealed: bytes, aad: bytes = b"") -> bytes:
        """The plaintext; ``ValueError`` if ``sealed`` was altered, sealed under another key or
        with another ``aad``."""
        if len(sealed) < self.NONCE_BYTES + 16:
            raise ValueError("sealed value too short")
        try:
            return self._aead.decrypt(sealed[: self.NONCE_BYTES], sealed[self.NONCE_BYTES :], aad or None)
        except InvalidTag:
            raise ValueError("sealed value does not open with this key") from None


def parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError(f"{where}: the key must be 64 hexadecimal characters (32 bytes)")
    return key


def create_key_file(path: Path) -> None:
    """Write a new key to a private temporary file, then link it into place: a concurrent
    creator never sees a partial file, and the first link wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(os.urandom(32).hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
            log.info("event=secret_key_created path=%s", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
