"""IPFS: raw CIDv1 of a file, the local content-addressed store, and Kubo's HTTP RPC API (block/put,
block/get) exercised against a stand-in server that answers as Kubo does (no Kubo binary can be
installed here: npm's ``kubo`` downloads it at install time)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from dpg.por import ipfs

EMPTY = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"  # the raw CIDv1 of no bytes, as Kubo prints it


def test_cid_of_known_content() -> None:
    assert ipfs.cid_raw(b"") == EMPTY
    # the same by hand: 0x01 (CIDv1) 0x55 (raw) 0x12 (sha2-256) 0x20 (32 bytes) digest, base32 lower
    data = b'{"version": 1}'
    binary = bytes([1, 0x55, 0x12, 32]) + hashlib.sha256(data).digest()
    assert ipfs.cid_raw(data) == "b" + base64.b32encode(binary).decode().lower().rstrip("=")
    assert ipfs.cid_raw(data).startswith("bafkrei")
    assert ipfs.matches(ipfs.cid_raw(data), data)
    assert not ipfs.matches(ipfs.cid_raw(data), data + b" ")


@pytest.mark.parametrize("bad", ["", "Qmabc", "bafy" + "a" * 55, "b!!", EMPTY[:-2]])
def test_malformed_cids_are_refused(bad: str) -> None:
    with pytest.raises(ipfs.IpfsError):
        ipfs.check_cid(bad)


def test_local_store_roundtrip_and_tamper_detection(tmp_path: Path) -> None:
    store = ipfs.Store(tmp_path / "ipfs")
    cid = store.put(b"tree")
    assert (tmp_path / "ipfs" / cid).read_bytes() == b"tree"
    assert store.put(b"tree") == cid
    assert store.get(cid) == b"tree"
    (tmp_path / "ipfs" / cid).write_bytes(b"evil")
    with pytest.raises(ipfs.IpfsError, match="does not hash"):
        store.get(cid)
    with pytest.raises(ipfs.IpfsError, match="not in"):
        store.get(ipfs.cid_raw(b"never stored"))


class FakeKubo(ThreadingHTTPServer):
    """Kubo's /api/v0/block/put and /api/v0/block/get: the CID computed as Kubo does for
    cid-codec=raw&mhtype=sha2-256, the answer {"Key", "Size"}; blocks above 1 MiB refused unless
    allow-big-block=true."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.blocks: dict[str, bytes] = {}
        self.requests: list[dict[str, Any]] = []
        self.lie = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeKubo

    def log_message(self, *_: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.requests.append({"path": url.path, "query": q})
        if url.path == "/api/v0/block/put":
            if q.get("cid-codec") != "raw" or q.get("mhtype") != "sha2-256":
                self._answer(400, b'{"Message":"unexpected options","Code":0,"Type":"error"}')
                return
            msg = BytesParser(policy=HTTP).parsebytes(
                f"content-type: {self.headers['content-type']}\r\n\r\n".encode() + raw)
            parts = list(msg.iter_parts())  # type: ignore[attr-defined]
            data = parts[0].get_payload(decode=True)
            if len(data) > 1 << 20 and q.get("allow-big-block") != "true":
                self._answer(500, b'{"Message":"produced block is over 1MiB","Code":0,"Type":"error"}')
                return
            digest = hashlib.sha256(data + (b"x" if self.server.lie else b"")).digest()
            cid = "b" + base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")
            self.server.blocks[cid] = data
            self._answer(200, json.dumps({"Key": cid, "Size": len(data)}).encode() + b"\n")
        elif url.path == "/api/v0/block/get":
            data = self.server.blocks.get(q.get("arg", ""))
            if data is None:
                self._answer(500, b'{"Message":"block was not found locally (offline)","Code":0,"Type":"error"}')
            else:
                self._answer(200, data, "text/plain")
        else:
            self._answer(404, b"404 page not found", "text/plain")


@pytest.fixture
def kubo() -> Iterator[FakeKubo]:
    server = FakeKubo()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_put_also_adds_the_block_to_kubo(tmp_path: Path, kubo: FakeKubo) -> None:
    store = ipfs.Store.from_env(tmp_path, {"DPG_IPFS_API": kubo.url})
    data = json.dumps({"leaves": list(range(1000))}).encode()
    cid = store.put(data)
    assert kubo.blocks == {cid: data}
    assert kubo.requests[0]["query"] == {"cid-codec": "raw", "mhtype": "sha2-256", "mhlen": "32", "pin": "true"}
    # a block only Kubo has is fetched from it, and checked
    (tmp_path / "ipfs" / cid).unlink()
    assert store.get(cid) == data


def test_a_big_tree_asks_kubo_to_take_a_big_block(tmp_path: Path, kubo: FakeKubo) -> None:
    store = ipfs.Store(tmp_path / "ipfs", ipfs.Kubo(kubo.url))
    cid = store.put(b"0" * (ipfs.KUBO_BLOCK_LIMIT + 1))
    assert kubo.requests[-1]["query"]["allow-big-block"] == "true"
    assert cid in kubo.blocks


def test_a_kubo_that_disagrees_on_the_cid_is_an_error(tmp_path: Path, kubo: FakeKubo) -> None:
    kubo.lie = True
    store = ipfs.Store(tmp_path / "ipfs", ipfs.Kubo(kubo.url))
    with pytest.raises(ipfs.IpfsError, match="kubo stored the block as"):
        store.put(b"tree")


def test_kubo_errors_and_missing_blocks(tmp_path: Path, kubo: FakeKubo) -> None:
    store = ipfs.Store(tmp_path / "ipfs", ipfs.Kubo(kubo.url))
    with pytest.raises(ipfs.IpfsError, match="HTTP 500"):
        store.get(ipfs.cid_raw(b"nobody has this"))
    with pytest.raises(ipfs.IpfsError):
        ipfs.Kubo("ftp://nope")
    with pytest.raises(ipfs.IpfsError):
        ipfs.Store(tmp_path / "x", ipfs.Kubo("http://127.0.0.1:9")).put(b"tree")
