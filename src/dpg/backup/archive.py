"""The backup archive's format: a plain, authenticated header, then the contents as a stream of
AES-256-GCM chunks; inside, named entries (a JSON description, then data blocks).

The file::

    MAGIC ‖ u32 header length ‖ header (JSON: format, cipher, chunk size, salt, nonce prefix, key id, …)
    then chunks: u32 ciphertext length ‖ ciphertext (the last chunk's nonce says it is the last)

Each chunk is sealed with a key derived (HKDF-SHA256) from the backup key and the archive's random
salt, under the nonce ``prefix ‖ u32 chunk number ‖ last flag``, with the whole header as associated
data: an altered header or chunk, chunks reordered, dropped or cut off, all fail to open. The
header's key id (an HMAC of the backup key) tells a wrong key apart from an altered archive. The
key itself is never written.

The plaintext is a run of entries, each ``u16 name length ‖ name ‖ u32 meta length ‖ meta (JSON)``
then its data as ``u32 length ‖ bytes`` blocks ended by an empty block; an empty name ends the run.
Everything streams: neither side holds more than a chunk in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"DPG-BACKUP\x00\x01"
FORMAT = 1
CHUNK = 1 << 20  # plaintext bytes per chunk
CIPHER = "AES-256-GCM"
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


class ArchiveError(ValueError):
    """The archive cannot be read: not an archive, another key, altered or cut off."""


def key_id(key: bytes) -> str:
    """A fingerprint of the backup key that reveals nothing of it."""
    return hmac.new(key, b"dpg backup key id", hashlib.sha256).hexdigest()[:16]


def _aead(key: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(hashes.SHA256(), 32, salt, b"dpg backup archive").derive(key))


def _nonce(prefix: bytes, n: int, last: bool) -> bytes:
    return prefix + _U32.pack(n) + (b"\x01" if last else b"\x00")


class SealedWriter:
    """Writes an archive to ``out``: ``write`` the plaintext, ``close`` seals the last chunk."""

    def __init__(self, out: BinaryIO, key: bytes, describe: dict[str, Any]) -> None:
        if len(key) != 32:
            raise ValueError("a backup key is 32 bytes")
        salt, self._prefix = os.urandom(32), os.urandom(7)
        header = {**describe, "format": FORMAT, "cipher": CIPHER, "kdf": "HKDF-SHA256", "chunk": CHUNK,
                  "salt": salt.hex(), "nonce_prefix": self._prefix.hex(), "key_id": key_id(key)}
        body = json.dumps(header, sort_keys=True).encode()
        self._aad = MAGIC + _U32.pack(len(body)) + body
        self._aead = _aead(key, salt)
        self._out = out
        self._buf = bytearray()
        self._n = 0
        self.size = 0
        self._emit(self._aad)

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.size += len(data)

    def _seal(self, plain: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._n, last), plain, self._aad)
        self._emit(_U32.pack(len(sealed)) + sealed)
        self._n += 1

    def write(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) > CHUNK:
            self._seal(bytes(self._buf[:CHUNK]), False)
            del self._buf[:CHUNK]

    def close(self) -> None:
        self._seal(bytes(self._buf), True)
        self._buf.clear()


def create(path: Path) -> BinaryIO:
    """A new archive file, readable by its owner only (what it holds is sealed, but its size and
    header are not everyone's business)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def read_header(src: BinaryIO) -> tuple[dict[str, Any], bytes]:
    """The header (as a dict) and its bytes as they were written (the chunks' associated data)."""
    magic = src.read(len(MAGIC))
    if magic != MAGIC:
        raise ArchiveError("not a DPG backup archive (wrong magic bytes)")
    raw = src.read(4)
    if len(raw) != 4:
        raise ArchiveError("the archive is cut off in its header")
    (n,) = _U32.unpack(raw)
    if n > 1 << 16:
        raise ArchiveError("the archive's header is damaged (impossible length)")
    body = src.read(n)
    try:
        header = json.loads(body)
        if not isinstance(header, dict):
            raise ValueError
    except ValueError:
        raise ArchiveError("the archive's header is damaged (not JSON)") from None
    if header.get("format") != FORMAT or header.get("cipher") != CIPHER:
        raise ArchiveError(f"archive format {header.get('format')} / {header.get('cipher')} is not one this DPG reads")
    return header, magic + raw + body


class SealedReader:
    """Reads the plaintext of an archive, checking every chunk; ``ArchiveError`` on a wrong key,
    an altered or a cut-off archive."""

    def __init__(self, src: BinaryIO, key: bytes) -> None:
        self.header, self._aad = read_header(src)
        if self.header.get("key_id") != key_id(key):
            raise ArchiveError(f"the archive was encrypted with another backup key (key id {self.header.get('key_id')};"
                               f" this DPG_BACKUP_KEY has key id {key_id(key)})")
        try:
            self._prefix = bytes.fromhex(self.header["nonce_prefix"])
            self._aead = _aead(key, bytes.fromhex(self.header["salt"]))
        except (KeyError, ValueError, TypeError):
            raise ArchiveError("the archive's header is damaged (salt or nonce)") from None
        self._src = src
        self._buf = b""
        self._pos = 0
        self._n = 0
        self._done = False

    def _next_chunk(self) -> bool:
        if self._done:
            return False
        raw = self._src.read(4)
        if len(raw) != 4:
            raise ArchiveError(f"the archive is cut off (after chunk {self._n})")
        (n,) = _U32.unpack(raw)
        if n > CHUNK + 16:
            raise ArchiveError(f"the archive is damaged or altered (chunk {self._n} has an impossible length)")
        sealed = self._src.read(n)
        if len(sealed) != n:
            raise ArchiveError(f"the archive is cut off (in chunk {self._n})")
        for last in (False, True):
            try:
                plain = self._aead.decrypt(_nonce(self._prefix, self._n, last), sealed, self._aad)
            except InvalidTag:
                continue
            self._n += 1
            if last:
                self._done = True
                if self._src.read(1):
                    raise ArchiveError("the archive is altered (bytes after its last chunk)")
            self._buf, self._pos = plain, 0
            return True
        raise ArchiveError(f"the archive is damaged or altered (chunk {self._n} fails authentication)")

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes (fewer only at the end of the plaintext)."""
        out = bytearray()
        while len(out) < n:
            if self._pos >= len(self._buf) and not self._next_chunk():
                break
            take = self._buf[self._pos:self._pos + n - len(out)]
            self._pos += len(take)
            out += take
        return bytes(out)

    def finish(self) -> None:
        """Check the archive to its last chunk (nothing of the plaintext left unread)."""
        if self._pos < len(self._buf) or self._next_chunk():
            raise ArchiveError("the archive holds more than its entries: altered")


class EntryWriter:
    """Named entries into a ``SealedWriter``. Small pieces of data (a COPY gives one a row) are
    gathered into blocks of up to ``BLOCK`` bytes."""

    BLOCK = 256 << 10

    def __init__(self, sealed: SealedWriter) -> None:
        self.sealed = sealed
        self._pending = bytearray()

    def begin(self, name: str, meta: dict[str, Any] | None = None) -> None:
        if not name:
            raise ValueError("an entry has a name")
        raw_name, raw_meta = name.encode(), json.dumps(meta or {}, sort_keys=True).encode()
        self.sealed.write(_U16.pack(len(raw_name)) + raw_name + _U32.pack(len(raw_meta)) + raw_meta)

    def data(self, block: bytes | bytearray | memoryview) -> None:
        self._pending += block
        if len(self._pending) >= self.BLOCK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.sealed.write(_U32.pack(len(self._pending)) + bytes(self._pending))
            self._pending.clear()

    def end(self) -> None:
        self._flush()
        self.sealed.write(_U32.pack(0))

    def entry(self, name: str, meta: dict[str, Any], body: bytes = b"") -> None:
        """A whole entry at once."""
        self.begin(name, meta)
        self.data(body)
        self.end()

    def close(self) -> None:
        self.sealed.write(_U16.pack(0))
        self.sealed.close()


@dataclass
class Entry:
    """An entry being read: its name, its description, and its data (``blocks``, read once, in order)."""

    name: str
    meta: dict[str, Any]
    _reader: SealedReader
    _left: bool = True

    def blocks(self) -> Iterator[bytes]:
        while self._left:
            (n,) = _U32.unpack(_exact(self._reader, 4))
            if n == 0:
                self._left = False
                return
            yield _exact(self._reader, n)

    def body(self) -> bytes:
        return b"".join(self.blocks())

    def skip(self) -> None:
        for _ in self.blocks():
            pass


def _exact(reader: SealedReader, n: int) -> bytes:
    data = reader.read(n)
    if len(data) != n:
        raise ArchiveError("the archive's contents end in the middle of an entry")
    return data


def entries(reader: SealedReader) -> Iterator[Entry]:
    """The archive's entries in order; each must be consumed (or skipped) before the next. Checks the
    archive to its end after the last."""
    while True:
        (n,) = _U16.unpack(_exact(reader, 2))
        if n == 0:
            reader.finish()
            return
        name = _exact(reader, n).decode()
        (m,) = _U32.unpack(_exact(reader, 4))
        try:
            meta = json.loads(_exact(reader, m))
        except ValueError:
            raise ArchiveError(f"entry {name}: its description is not JSON") from None
        entry = Entry(name, meta, reader)
        yield entry
        entry.skip()
