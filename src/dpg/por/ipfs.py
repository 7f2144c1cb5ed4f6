"""IPFS for the published trees: a real CIDv1 of each file, a local content-addressed store, and,
with ``DPG_IPFS_API`` set, the same block added to a Kubo node over its HTTP RPC API.

A file is one raw block: CIDv1 = varint(1) ‖ varint(0x55, raw) ‖ multihash(sha2-256), written
in base32 lower case with the multibase prefix ``b`` (``bafkrei…``). That is what Kubo's
``/api/v0/block/put?cid-codec=raw&mhtype=sha2-256`` returns for the same bytes, so the CID in
the registry names the same content on any IPFS node. The local store keeps ``<dir>/<cid>``.
Any HTTP gateway serves a block at ``/ipfs/<cid>`` (``?format=raw``: the block's bytes as they were
added); ``gateway_get`` fetches one from it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

log = logging.getLogger("dpg.por.ipfs")

RAW = 0x55
SHA2_256 = 0x12
# Kubo refuses blocks above 1 MiB unless asked to take them (and bitswap moves blocks of at
# most 2 MiB: a larger tree is fetched from the node that has it, or from the operator's store)
KUBO_BLOCK_LIMIT = 1 << 20


class IpfsError(Exception):
    """A CID that is malformed, content that does not match its CID, or a Kubo node that failed."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def cid_raw(data: bytes) -> str:
    """The CIDv1 (raw codec, sha2-256) of ``data`` as a base32 string: ``b`` + RFC 4648 lower case, unpadded."""
    digest = hashlib.sha256(data).digest()
    binary = _varint(1) + _varint(RAW) + _varint(SHA2_256) + _varint(len(digest)) + digest
    return "b" + base64.b32encode(binary).decode().lower().rstrip("=")


def check_cid(cid: str) -> bytes:
    """The sha2-256 digest named by a raw CIDv1 string; IpfsError for anything else."""
    if not cid.startswith("b") or not cid[1:].isalnum():
        raise IpfsError(f"{cid!r} is not a base32 CIDv1")
    raw = cid[1:].upper()
    try:
        binary = base64.b32decode(raw + "=" * (-len(raw) % 8))
    except ValueError:
        raise IpfsError(f"{cid!r} is not base32") from None
    if binary[:4] != bytes([1, RAW, SHA2_256, 32]) or len(binary) != 36:
        raise IpfsError(f"{cid!r} is not a raw sha2-256 CIDv1")
    return binary[4:]


def matches(cid: str, data: bytes) -> bool:
    return hashlib.sha256(data).digest() == check_cid(cid)


RAW_BLOCK = "application/vnd.ipld.raw"  # the trustless gateways' media type of a block's bytes


def gateway_get(gateway: str, cid: str, timeout: float = 60.0) -> bytes:
    """The bytes an HTTP gateway (DPG's API, or any IPFS gateway) serves for ``cid`` as a raw
    block, unchecked: the caller compares them with the CID (``matches``)."""
    check_cid(cid)
    if not gateway.startswith(("http://", "https://")):
        raise IpfsError(f"the gateway must be an http(s) URL, not {gateway!r}")
    url = f"{gateway.rstrip('/')}/ipfs/{cid}?format=raw"
    req = urllib.request.Request(url, headers={"accept": RAW_BLOCK})  # noqa: S310 (checked scheme)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            data: bytes = resp.read()
            return data
    except urllib.error.HTTPError as e:
        raise IpfsError(f"the gateway answered {url} with HTTP {e.code}: "
                        f"{e.read()[:300].decode(errors='replace')}") from None
    except OSError as e:
        raise IpfsError(f"the gateway {gateway}: {e}") from None


class Kubo:
    """The few calls of Kubo's HTTP RPC API (``http://127.0.0.1:5001`` by default) DPG makes."""

    def __init__(self, api: str, timeout: float = 60.0) -> None:
        if not api.startswith(("http://", "https://")):
            raise IpfsError(f"DPG_IPFS_API must be an http(s) URL, not {api!r}")
        self.api = api.rstrip("/")
        self.timeout = timeout

    def _post(self, path: str, query: dict[str, str], body: bytes = b"", content_type: str = "") -> bytes:
        url = f"{self.api}/api/v0/{path}?{urllib.parse.urlencode(query)}"
        headers = {"content-type": content_type} if content_type else {}
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (checked scheme)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                data: bytes = resp.read()
                return data
        except urllib.error.HTTPError as e:
            raise IpfsError(f"kubo {path}: HTTP {e.code} {e.read()[:500].decode(errors='replace')}") from None
        except OSError as e:
            raise IpfsError(f"kubo {path}: {e}") from None

    def block_put(self, data: bytes) -> str:
        """Add ``data`` as one raw block, pinned; returns the CID Kubo computed."""
        boundary = "dpg" + secrets.token_hex(12)
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"tree.json\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        query = {"cid-codec": "raw", "mhtype": "sha2-256", "mhlen": "32", "pin": "true"}
        if len(data) > KUBO_BLOCK_LIMIT:
            query["allow-big-block"] = "true"
        raw = self._post("block/put", query, body, f"multipart/form-data; boundary={boundary}")
        try:
            key = json.loads(raw)["Key"]
        except (ValueError, KeyError, TypeError):
            raise IpfsError(f"kubo block/put: unexpected answer {raw[:200]!r}") from None
        return str(key)

    def block_get(self, cid: str) -> bytes:
        return self._post("block/get", {"arg": cid})


class Store:
    """A content-addressed store in a directory (``<data dir>/ipfs``), and a Kubo node if given."""

    def __init__(self, directory: Path, kubo: Kubo | None = None) -> None:
        self.directory = directory
        self.kubo = kubo

    @staticmethod
    def from_env(data_dir: Path, env: dict[str, str] | None = None) -> Store:
        e = os.environ if env is None else env
        api = e.get("DPG_IPFS_API", "")
        return Store(data_dir / "ipfs", Kubo(api) if api else None)

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its CID. With a Kubo node, the node must return the same CID."""
        cid = cid_raw(data)
        path = self.directory / cid
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".put-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        if self.kubo is not None:
            got = self.kubo.block_put(data)
            if got != cid:
                raise IpfsError(f"kubo stored the block as {got}, DPG computed {cid}")
            log.info("event=ipfs_added cid=%s bytes=%d api=%s", cid, len(data), self.kubo.api)
        return cid

    def get(self, cid: str) -> bytes:
        """The content of ``cid`` from the local store, else from the Kubo node; checked against the CID."""
        check_cid(cid)
        path = self.directory / cid
        if path.is_file():
            data = path.read_bytes()
        elif self.kubo is not None:
            data = self.kubo.block_get(cid)
        else:
            raise IpfsError(f"{cid} is not in {self.directory} (and DPG_IPFS_API is not set)")
        if not matches(cid, data):
            raise IpfsError(f"the content fetched for {cid} does not hash to it")
        return data
