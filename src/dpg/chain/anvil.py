"""An anvil node as a subprocess: where its binary is, starting it on a port, stopping it.

anvil comes from npm (``@foundry-rs/anvil``, whose platform package carries the binary), installed
under ``contracts/node_modules`` by ``contracts/build.sh``; ``DPG_ANVIL`` names another binary, and
one on the PATH is used last. DPG runs it for the embedded development chains and the tests.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from dpg.chain.rpc import Rpc, RpcUnavailable

log = logging.getLogger("dpg.chain.anvil")

REPO_CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"


def _platform() -> str:
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "")
    machine = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "")
    return f"{system}-{machine}"


def find_anvil(env: dict[str, str] | None = None) -> Path | None:
    """The anvil binary: ``DPG_ANVIL``, else npm's under contracts/node_modules, else the PATH."""
    e = os.environ if env is None else env
    named = e.get("DPG_ANVIL", "")
    if named:
        return Path(named) if Path(named).is_file() else None
    native = REPO_CONTRACTS / "node_modules" / "@foundry-rs" / f"anvil-{_platform()}" / "bin" / "anvil"
    if native.is_file() and os.access(native, os.X_OK):
        return native
    on_path = shutil.which("anvil")
    return Path(on_path) if on_path else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Anvil:
    """One anvil process listening on 127.0.0.1:``port``."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_file: IO[bytes] | None) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log_file = log_file

    @staticmethod
    def start(
        binary: Path,
        *,
        port: int = 0,
        chain_id: int = 31337,
        block_seconds: float | None = None,
        state: Path | None = None,
        state_interval: int = 5,
        log_path: Path | None = None,
        timeout: float = 15.0,
    ) -> Anvil:
        """Start anvil and wait until it answers. ``block_seconds`` None: a block per transaction
        (and ``anvil_mine`` on demand); else interval mining. ``state``: load the chain from that file
        if it exists and dump it there on exit and every ``state_interval`` seconds."""
        port = port or free_port()
        args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id)]
        if block_seconds is not None:
            args += ["--block-time", f"{block_seconds:g}"]
        if state is not None:
            state.parent.mkdir(parents=True, exist_ok=True)
            args += ["--state", str(state), "--state-interval", str(state_interval)]
        log_file = log_path.open("ab") if log_path is not None else None
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log_file or subprocess.DEVNULL,
                                    stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL)
        except OSError:
            if log_file is not None:
                log_file.close()
            raise
        node = Anvil(proc, port, log_file)
        rpc = Rpc(node.url, timeout=2.0)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                node._close_log()
                raise RuntimeError(f"anvil exited with {proc.returncode} at start ({' '.join(args)})")
            try:
                rpc.block_number()
                break
            except RpcUnavailable:
                if time.monotonic() > deadline:
                    node.stop()
                    raise RuntimeError(f"anvil did not answer on port {port} within {timeout} s") from None
                time.sleep(0.02)
        log.info("event=anvil_started pid=%d url=%s chain_id=%d state=%s", proc.pid, node.url, chain_id, state)
        return node

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (anvil dumps its state, if it keeps one), then SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            log.info("event=anvil_stopped pid=%d url=%s", self.proc.pid, self.url)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL: the node vanishes at once."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
