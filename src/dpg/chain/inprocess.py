"""The in-process dev chain: an EVM (py-evm, through eth-tester) in the exchange's own process,
behind a JSON-RPC endpoint on 127.0.0.1, so the deposit watcher, the broadcaster and the
commands reach it exactly as they reach any node by URL.

- Accounts: the dev mnemonic's first ten (anvil's test accounts), unlocked, 1,000,000 ETH each.
- Blocks: each transaction is mined at once (those sent inside ``one_block()`` together), and an
  empty block every ``block_seconds`` gives deposits their confirmations. A block's time is the
  wall clock (one second past its parent's when transactions come faster than one a second), so
  the chain's time follows the clock.
- State: the chain database is written to ``state`` (MessagePack of its key/value store,
  replaced atomically) every 10 seconds when it changed and at stop, and read back at start.
- The Prague rules; the configured chain id.

Answered: eth_chainId, net_version, web3_clientVersion, eth_blockNumber, eth_getBlockByNumber,
eth_getBlockByHash, eth_getLogs, eth_call, eth_estimateGas, eth_getCode, eth_getBalance,
eth_getStorageAt, eth_accounts, eth_getTransactionCount, eth_getTransactionByHash,
eth_getTransactionReceipt, eth_sendTransaction, eth_sendRawTransaction, eth_gasPrice,
eth_maxPriorityFeePerGas, evm_mine/anvil_mine. A revert answers code 3 with the revert data, as
geth and anvil do.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgpack

from dpg.chain.signer import DEV_MNEMONIC

log = logging.getLogger("dpg.chain.inprocess")

_SNAKE = re.compile(r"_([a-z])")
_TX_INTS = {"gas", "gasPrice", "value", "nonce", "maxFeePerGas", "maxPriorityFeePerGas", "chainId"}


class RpcFailure(Exception):
    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _camel(key: str) -> str:
    return _SNAKE.sub(lambda m: m.group(1).upper(), key)


def _out(v: Any) -> Any:
    """eth-tester's values as JSON-RPC's: quantities as hex, camelCase keys."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return hex(v)
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    if isinstance(v, dict):
        return {_camel(k): _out(x) for k, x in v.items() if k != "type" or not isinstance(x, str) or x != "mined"}
    if isinstance(v, list | tuple):
        return [_out(x) for x in v]
    return v


def _tx_in(tx: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tx.items():
        if v is None:
            continue
        if k in _TX_INTS:
            out[_SNAKE_OF.get(k, k)] = int(v, 16) if isinstance(v, str) else int(v)
        elif k == "input":
            out["data"] = v
        elif k in ("from", "to", "data"):
            out[k] = v
    return out


_SNAKE_OF = {"gasPrice": "gas_price", "maxFeePerGas": "max_fee_per_gas",
             "maxPriorityFeePerGas": "max_priority_fee_per_gas", "chainId": "chain_id"}


class InProcessChain:
    def __init__(self, chain_id: int, block_seconds: float = 2.0, state: Path | None = None,
                 save_seconds: float = 10.0) -> None:
        from eth.db.atomic import AtomicDB
        from eth.db.backends.memory import MemoryDB
        from eth.vm.chain_context import ChainContext
        from eth_tester import EthereumTester, PyEVMBackend

        self.chain_id = chain_id
        self.block_seconds = block_seconds
        self.state = state
        self.save_seconds = save_seconds
        backend = PyEVMBackend(mnemonic=DEV_MNEMONIC, hd_path="m/44'/60'/0'/0")
        chain_class = type(backend.chain)
        chain_class.chain_id = chain_id  # a class of this backend's own
        if state is not None and state.exists():
            kv = msgpack.unpackb(state.read_bytes())
            backend.chain = chain_class(AtomicDB(MemoryDB(kv)))
        else:
            backend.chain.chain_context = ChainContext(chain_id)
        self.tester = EthereumTester(backend)
        self._lock = threading.RLock()
        self._dirty = False
        self._holding = False  # inside one_block(): eth_sendTransaction adds to the block, mines nothing
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, port: int = 0) -> InProcessChain:
        chain = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > 4 * 1024 * 1024:
                    self.send_error(413)
                    return
                raw = self.rfile.read(length)
                try:
                    req = json.loads(raw)
                except ValueError:
                    self._send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
                    return
                if isinstance(req, list):
                    self._send([chain.handle(r) for r in req])
                else:
                    self._send(chain.handle(req))

            def _send(self, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("access-control-allow-origin", "*")
                self.end_headers()
                self.wfile.write(data)

            def do_OPTIONS(self) -> None:  # browsers' preflight, for a page reading the chain
                self.send_response(204)
                self.send_header("access-control-allow-origin", "*")
                self.send_header("access-control-allow-methods", "POST")
                self.send_header("access-control-allow-headers", "content-type")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        for target, name in ((self._server.serve_forever, "rpc"), (self._mine_loop, "miner"),
                             (self._save_loop, "state")):
            t = threading.Thread(target=target, daemon=True, name=f"dpg-evm-{self.chain_id}-{name}")
            t.start()
            self._threads.append(t)
        log.info("event=inprocess_chain_started chain_id=%d url=%s state=%s", self.chain_id, self.url, self.state)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(10)
        self._threads.clear()
        self.save()

    def save(self) -> None:
        if self.state is None:
            return
        with self._lock:
            kv = dict(self.tester.backend.chain.chaindb.db.wrapped_db.kv_store)
            self._dirty = False
        tmp = self.state.with_suffix(".tmp")
        tmp.write_bytes(msgpack.packb(kv))
        os.replace(tmp, self.state)

    @contextlib.contextmanager
    def one_block(self) -> Iterator[None]:
        """Transactions sent with eth_sendTransaction inside are mined together in one block at the
        end, rather than one block each, each a second past its parent: a burst of them then does
        not run the chain's clock ahead of the wall clock. A transaction sent otherwise meanwhile
        mines them with it."""
        with self._lock:
            self._restamp()
            self._holding = True
        try:
            yield
        finally:
            with self._lock:
                self._holding = False
                self.tester.mine_blocks(1)
                self._dirty = True

    def _restamp(self) -> None:
        """The next block's time: now, or a second past its parent's."""
        chain = self.tester.backend.chain
        ts = max(chain.get_canonical_head().timestamp + 1, int(time.time()))
        if chain.header.timestamp != ts:
            chain.header = chain.header.copy(timestamp=ts)

    def _mine_loop(self) -> None:
        while not self._stop.wait(self.block_seconds):
            with self._lock:
                if self._holding:
                    continue
                self._restamp()
                self.tester.mine_blocks(1)
                self._dirty = True

    def _save_loop(self) -> None:
        while not self._stop.wait(self.save_seconds):
            if self._dirty:
                try:
                    self.save()
                except OSError as e:
                    log.warning("event=inprocess_state_not_saved error=%r", str(e))

    # ------------------------------------------------------------------ JSON-RPC

    def handle(self, req: Any) -> dict[str, Any]:
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            if not isinstance(req, dict) or not isinstance(req.get("method"), str):
                raise RpcFailure(-32600, "invalid request")
            params = req.get("params") or []
            with self._lock:
                result = self.call(req["method"], list(params))
            return {"jsonrpc": "2.0", "id": rid, "result": result}
        except RpcFailure as e:
            err: dict[str, Any] = {"code": e.code, "message": e.message}
            if e.data is not None:
                err["data"] = e.data
            return {"jsonrpc": "2.0", "id": rid, "error": err}
        except Exception as e:  # every failure is an answer, never a dropped connection
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": f"{type(e).__name__}: {e}"}}

    def _with_sender(self, tx: dict[str, Any]) -> dict[str, Any]:
        """A call without a sender runs as the first dev account (eth-tester checks it can pay the gas)."""
        if "from" not in tx:
            tx["from"] = self.tester.get_accounts()[0]
        return tx

    def _block_id(self, ref: Any) -> Any:
        if ref in (None, "latest", "safe", "finalized"):
            return "latest"
        if ref in ("pending", "earliest"):
            return ref
        return int(ref, 16) if isinstance(ref, str) else int(ref)

    def _executing(self, fn: Any) -> Any:
        from eth_tester.exceptions import TransactionFailed

        try:
            return fn()
        except TransactionFailed as e:
            reason = e.args[0] if e.args else b""
            data = getattr(reason, "args", [b""])[0] if not isinstance(reason, bytes | str) else reason
            if isinstance(data, str) and data.startswith(("b'", 'b"')):
                data = ast.literal_eval(data)  # eth-tester's call gives the revert data as its repr
            if isinstance(data, str):
                raise RpcFailure(3, f"execution reverted: {data}") from None
            raise RpcFailure(3, "execution reverted", "0x" + bytes(data or b"").hex()) from None

    def call(self, method: str, p: list[Any]) -> Any:  # one branch per method
        t = self.tester
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "net_version":
            return str(self.chain_id)
        if method == "web3_clientVersion":
            return "dpg-inprocess/py-evm"
        if method == "eth_blockNumber":
            return hex(t.get_block_by_number("latest")["number"])
        if method in ("eth_getBlockByNumber", "eth_getBlockByHash"):
            from eth_tester.exceptions import BlockNotFound

            try:
                if method == "eth_getBlockByNumber":
                    b = t.get_block_by_number(self._block_id(p[0]), bool(p[1]) if len(p) > 1 else False)
                else:
                    b = t.get_block_by_hash(p[0], bool(p[1]) if len(p) > 1 else False)
            except BlockNotFound:
                return None
            out = _out(b)
            out["logsBloom"] = "0x" + int(b.get("logs_bloom", 0)).to_bytes(256, "big").hex()
            return out
        if method == "eth_getLogs":
            f = p[0] if p else {}
            if "blockHash" in f:
                n = t.get_block_by_hash(f["blockHash"])["number"]
                frm, to = n, n
            else:
                frm, to = self._block_id(f.get("fromBlock", "latest")), self._block_id(f.get("toBlock", "latest"))
                head = t.get_block_by_number("latest")["number"]
                frm = head if frm == "latest" else 0 if frm == "earliest" else frm
                to = head if to == "latest" else to
            logs = t.get_logs(from_block=frm, to_block=to, address=f.get("address"), topics=f.get("topics"))
            return [{**_out(lg), "removed": False} for lg in logs]
        if method == "eth_call":
            tx = self._with_sender(_tx_in(p[0]))
            return self._executing(lambda: t.call(tx, self._block_id(p[1] if len(p) > 1 else "latest")))
        if method == "eth_estimateGas":
            tx = self._with_sender(_tx_in(p[0]))
            return hex(self._executing(lambda: t.estimate_gas(tx)))
        if method == "eth_getCode":
            return t.get_code(p[0], self._block_id(p[1] if len(p) > 1 else "latest"))
        if method == "eth_getBalance":
            return hex(t.get_balance(p[0], self._block_id(p[1] if len(p) > 1 else "latest")))
        if method == "eth_getStorageAt":
            return _out(t.get_storage_at(p[0], int(p[1], 16), self._block_id(p[2] if len(p) > 2 else "latest")))
        if method == "eth_accounts":
            return [a.lower() for a in t.get_accounts()]
        if method == "eth_getTransactionCount":
            return hex(t.get_nonce(p[0], self._block_id(p[1] if len(p) > 1 else "latest")))
        if method == "eth_getTransactionByHash":
            from eth_tester.exceptions import TransactionNotFound

            try:
                return _out(t.get_transaction_by_hash(p[0]))
            except TransactionNotFound:
                return None
        if method == "eth_getTransactionReceipt":
            from eth_tester.exceptions import TransactionNotFound

            try:
                r = t.get_transaction_receipt(p[0])
            except TransactionNotFound:
                return None
            if r is None or r.get("block_number") is None:
                return None
            out = _out(r)
            out["transactionHash"] = p[0]
            out["logs"] = [{**x, "removed": False} for x in out.get("logs", [])]
            return out
        if method == "eth_sendTransaction":
            if not self._holding:
                self._restamp()
            tx = _tx_in(p[0])
            if self._holding and "nonce" not in tx and "from" in tx:  # after those already in the block
                tx["nonce"] = t.get_nonce(tx["from"], "pending")
            if "gas" not in tx:
                tx["gas"] = self._executing(lambda: t.estimate_gas(tx)) * 5 // 4
            # inside one_block(): added to the pending block without the auto-mining wrapper
            send = type(t).send_transaction.__wrapped__ if self._holding else type(t).send_transaction
            h = self._executing(lambda: send(t, tx))
            self._dirty = True
            return h
        if method == "eth_sendRawTransaction":
            self._restamp()
            h = self._executing(lambda: t.send_raw_transaction(p[0]))
            self._dirty = True
            return h
        if method == "eth_gasPrice":
            base = t.get_block_by_number("latest").get("base_fee_per_gas") or 0
            return hex(int(base) + 1_000_000_000)
        if method == "eth_maxPriorityFeePerGas":
            return hex(1_000_000_000)
        if method in ("evm_mine", "anvil_mine", "hardhat_mine"):
            n = int(p[0], 16) if p and isinstance(p[0], str) else int(p[0]) if p else 1
            self._restamp()
            t.mine_blocks(max(1, n))
            self._dirty = True
            return "0x0"
        raise RpcFailure(-32601, f"the method {method} does not exist/is not available")

