"""A small Ethereum JSON-RPC client over HTTP: the calls the deposit watcher and the dev chain make.

Quantities are ints, hashes and addresses lower-case ``0x`` strings, logs and receipts the node's
JSON objects. Two failures are told apart: ``RpcUnavailable`` (the node cannot be reached, timed
out or answered HTTP 5xx/429: retry later) and ``RpcError`` (the node answered with a JSON-RPC
error: the request itself was refused).

Why not web3.py: web3, eth-account and eth-tester/py-evm all require ``pycryptodome<4`` (through
``eth-hash[pycryptodome]``, ``eth-keyfile`` and ``eth-bloom``), and DPG pins ``pycryptodome==4.4.0``
for the proof of reserves; these few calls need no more than the standard library.
"""

from __future__ import annotations

import http.client
import itertools
import json
import time
import urllib.error
import urllib.request
from typing import Any


class RpcUnavailable(Exception):
    """The node did not answer (connection refused or reset, timeout, HTTP 5xx or 429)."""


class RpcError(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: str = "") -> None:
        super().__init__(f"{method}: {code} {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data  # a revert's return data (0x…), when the node gives it


def to_int(value: Any) -> int:
    """A JSON-RPC quantity ("0x1a") as an int."""
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"not a quantity: {value!r}")
    return int(value, 16)


def hex_quantity(n: int) -> str:
    return hex(n)


class Rpc:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"an RPC URL is http:// or https://, not {url!r}")
        self.url = url
        self.timeout = timeout
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"Rpc({self.url!r})"

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []})
        req = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            self.url, data=body.encode(), headers={"content-type": "application/json"}, method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as e:
            if e.code >= 500 or e.code == 429:
                raise RpcUnavailable(f"{method}: HTTP {e.code}") from None
            raise RpcError(method, -e.code, f"HTTP {e.code}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise RpcUnavailable(f"{method}: {e!r}") from None
        try:
            reply = json.loads(raw)
        except ValueError:
            raise RpcUnavailable(f"{method}: the answer is not JSON") from None
        if not isinstance(reply, dict):
            raise RpcUnavailable(f"{method}: the answer is not a JSON-RPC object")
        err = reply.get("error")
        if err is not None:
            code = err.get("code", 0) if isinstance(err, dict) else 0
            message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
            data = err.get("data", "") if isinstance(err, dict) else ""
            raise RpcError(method, int(code), str(message), data if isinstance(data, str) else "")
        return reply.get("result")

    # ------------------------------------------------------------------ reading

    def chain_id(self) -> int:
        return to_int(self.call("eth_chainId"))

    def block_number(self) -> int:
        return to_int(self.call("eth_blockNumber"))

    def block(self, number: int) -> dict[str, Any] | None:
        """The canonical block at ``number`` (without its transactions), or None if the node has none."""
        result: dict[str, Any] | None = self.call("eth_getBlockByNumber", [hex_quantity(number), False])
        return result

    def block_hash(self, number: int) -> str | None:
        b = self.block(number)
        return str(b["hash"]).lower() if b is not None else None

    def get_logs(self, address: str, topics: list[str | None], from_block: int, to_block: int) -> list[dict[str, Any]]:
        result = self.call("eth_getLogs", [{
            "address": address, "topics": topics,
            "fromBlock": hex_quantity(from_block), "toBlock": hex_quantity(to_block),
        }])
        if not isinstance(result, list):
            raise RpcUnavailable("eth_getLogs: the answer is not a list")
        return result

    def eth_call(self, to: str, data: str, block: str = "latest") -> bytes:
        result = self.call("eth_call", [{"to": to, "data": data}, block])
        return bytes.fromhex(str(result)[2:])

    def code(self, address: str) -> bytes:
        return bytes.fromhex(str(self.call("eth_getCode", [address, "latest"]))[2:])

    def balance(self, address: str) -> int:
        return to_int(self.call("eth_getBalance", [address, "latest"]))

    def accounts(self) -> list[str]:
        return [str(a).lower() for a in self.call("eth_accounts")]

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.call("eth_getTransactionReceipt", [tx_hash])
        return result

    # ------------------------------------------------------------------ writing (dev nodes: unlocked accounts)

    def send_transaction(self, tx: dict[str, Any]) -> str:
        """``eth_sendTransaction`` from an account the node holds (anvil's dev accounts)."""
        return str(self.call("eth_sendTransaction", [tx])).lower()

    def wait_receipt(self, tx_hash: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = self.receipt(tx_hash)
            if r is not None:
                return r
            if time.monotonic() > deadline:
                raise TimeoutError(f"no receipt for {tx_hash} after {timeout} s")
            time.sleep(0.05)

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks now (anvil and hardhat: ``anvil_mine``/``hardhat_mine``)."""
        self.call("anvil_mine", [hex_quantity(blocks)])
