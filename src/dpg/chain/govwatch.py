"""The governance watcher of the chain with DPG's governance contracts: each decision ExchangeParams
records (an event with a change id) becomes its engine command, exactly once, after the chain's
confirmation depth.

A poll reads the head, then ExchangeParams' events in the confirmed blocks after the cursor (a row
``<chain>:gov`` of ``chain_cursors``), oldest first, and hands each decision to the engine with the
reference ``gov:<chain id>:<change id>``: FeesSet -> SetFees, StakerShareSet -> SetStakerShare (the
contract's basis points x 100 = the engine's ppm), MarketListed -> ListMarket, MarketHalted and
MarketResumed -> HaltMarket. A decision recorded in ``gov_changes`` (applied or rejected) is not sent
again; the engine refuses a reference it applied (DUPLICATE_REFERENCE): after a restart the decision
is marked applied, never applied twice. The cursor then moves to the last confirmed block read.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_utils.crypto import keccak
from psycopg.types.json import Jsonb

from dpg.chain.config import ChainConfig
from dpg.chain.governance import Governance
from dpg.chain.rpc import Rpc, to_int
from dpg.chain.store import Connected, DepositStore, _locked
from dpg.chain.watcher import SequencerUnavailable, Submit
from dpg.chain.worker import ChainWorker
from dpg.core import events as E
from dpg.core.commands import Command, HaltMarket, ListMarket, SetFees, SetStakerShare
from dpg.core.errors import Reject
from dpg.core.model import GOV_REF

log = logging.getLogger("dpg.chain.govwatch")

BPS_TO_PPM = 100  # the contract's stakers' share in basis points; the engine's in ppm

# ExchangeParams' events: their signature, the names of their non-indexed fields and types
_EVENTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "FeesSet(uint64,bytes32,uint32,uint32)": ("fees", ("maker_fee_ppm", "taker_fee_ppm"), ("uint32", "uint32")),
    "StakerShareSet(uint64,uint32)": ("staker_share", ("share_bps",), ("uint32",)),
    "MarketListed(uint64,bytes32,bytes32,bytes32,uint128,uint128,uint128,uint32,uint32)": (
        "list", ("base", "quote", "tick_size", "lot_size", "min_notional", "maker_fee_ppm", "taker_fee_ppm"),
        ("bytes32", "bytes32", "uint128", "uint128", "uint128", "uint32", "uint32")),
    "MarketHalted(uint64,bytes32)": ("halt", (), ()),
    "MarketResumed(uint64,bytes32)": ("resume", (), ()),
}
TOPICS = {"0x" + keccak(text=sig).hex(): spec for sig, spec in _EVENTS.items()}


def symbol(raw: bytes) -> str:
    """A zero-padded bytes32 symbol as text ("BTC/USDT")."""
    return raw.rstrip(b"\x00").decode("ascii", errors="replace")


def symbol_bytes(text: str) -> bytes:
    """``text`` as a zero-padded bytes32 symbol."""
    raw = text.encode("ascii")
    if not 0 < len(raw) <= 32:
        raise ValueError(f"a symbol is 1-32 ASCII characters, not {text!r}")
    return raw.ljust(32, b"\x00")


def reference(chain_id: int, change_id: int) -> str:
    """The engine reference of a decision: applied at most once."""
    return f"{GOV_REF}{chain_id}:{change_id}"


@dataclass(frozen=True, slots=True)
class Decision:
    """One ExchangeParams event: the change id, what it does, its market (or None) and values."""

    change_id: int
    action: str  # fees, staker_share, list, halt, resume
    market: str | None
    values: dict[str, Any]
    tx_hash: str
    block_number: int
    log_index: int

    def command(self, ref: str) -> Command:
        v, m = self.values, self.market or ""
        if self.action == "fees":
            return SetFees(m, v["maker_fee_ppm"], v["taker_fee_ppm"], ref)
        if self.action == "staker_share":
            return SetStakerShare(v["share_bps"] * BPS_TO_PPM, ref)
        if self.action == "list":
            return ListMarket(m, v["base"], v["quote"], v["tick_size"], v["lot_size"], v["min_notional"],
                              v["maker_fee_ppm"], v["taker_fee_ppm"], ref)
        return HaltMarket(m, self.action == "halt", ref)


def decode_decision(entry: dict[str, Any]) -> Decision | None:
    """An ExchangeParams log as a Decision (None: not one of its events)."""
    topics = [str(t).lower() for t in entry.get("topics", [])]
    spec = TOPICS.get(topics[0]) if topics else None
    if spec is None or entry.get("removed"):
        return None
    action, names, types = spec
    values = dict(zip(names, decode(list(types), bytes.fromhex(str(entry["data"])[2:])), strict=True))
    for k in ("base", "quote"):
        if k in values:
            values[k] = symbol(values[k])
    market = symbol(bytes.fromhex(topics[2][2:])) if len(topics) > 2 else None
    return Decision(int(topics[1], 16), action, market, values, str(entry["transactionHash"]).lower(),
                    to_int(entry["blockNumber"]), to_int(entry["logIndex"]))


@dataclass(frozen=True, slots=True)
class Change:
    """A row of ``gov_changes``."""

    chain_id: int
    change_id: int
    action: str
    market: str | None
    values: dict[str, Any]
    tx_hash: str
    block_number: int
    status: str  # applied, rejected
    seq: int | None
    reason: str | None
    seen_at: Any

    def as_dict(self) -> dict[str, Any]:
        return {"change_id": self.change_id, "action": self.action, "market": self.market, "values": self.values,
                "tx_hash": self.tx_hash, "status": self.status, "seq": self.seq, "reason": self.reason,
                "time": self.seen_at.isoformat() if self.seen_at is not None else None}


_CHANGE_COLUMNS = "chain_id, change_id, action, market, params, tx_hash, block_number, status, seq, reason, seen_at"


class GovStore(Connected):
    """``gov_contracts`` and ``gov_changes`` (migration 0025_governance.sql)."""

    @_locked
    def vault_of(self, chain: str) -> tuple[str, str, list[dict[str, Any]]] | None:
        """(vault, native asset, tokens) of ``chain`` as custody recorded it (``chains``), or None."""
        row = self._c().execute("SELECT vault, native_asset, tokens FROM chains WHERE name = %s",
                                (chain,)).fetchone()
        return None if row is None else (row[0], row[1], list(row[2]))

    @_locked
    def save_contracts(self, chain: ChainConfig, gov: Governance) -> None:
        self._c().execute(
            "INSERT INTO gov_contracts (chain, chain_id, rpc_url, token, staking, governor, timelock, params)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (chain) DO UPDATE SET chain_id = excluded.chain_id,"
            " rpc_url = excluded.rpc_url, token = excluded.token, staking = excluded.staking,"
            " governor = excluded.governor, timelock = excluded.timelock, params = excluded.params, updated_at = now()",
            (chain.name, chain.chain_id, chain.rpc_url, gov.token, gov.staking, gov.governor, gov.timelock,
             gov.params))

    @_locked
    def contracts(self) -> tuple[str, int, str, Governance] | None:
        """(chain, chain id, RPC URL, contracts) of the governed chain, or None."""
        row = self._c().execute("SELECT chain, chain_id, rpc_url, token, staking, timelock, governor, params"
                                " FROM gov_contracts ORDER BY updated_at DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return row[0], int(row[1]), row[2], Governance(*row[3:8])

    @_locked
    def seen(self, chain_id: int, change_ids: list[int]) -> set[int]:
        rows = self._c().execute("SELECT change_id FROM gov_changes WHERE chain_id = %s AND change_id = ANY(%s)",
                                 (chain_id, change_ids)).fetchall()
        return {int(r[0]) for r in rows}

    @_locked
    def record(self, chain_id: int, d: Decision, status: str, seq: int | None, reason: str | None) -> None:
        self._c().execute(
            "INSERT INTO gov_changes (chain_id, change_id, action, market, params, tx_hash, block_number, status,"
            " seq, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (chain_id, d.change_id, d.action, d.market, Jsonb(d.values), d.tx_hash, d.block_number, status, seq,
             reason))

    @_locked
    def changes(self, limit: int = 100) -> list[Change]:
        """The decisions seen, newest first."""
        rows = self._c().execute(f"SELECT {_CHANGE_COLUMNS} FROM gov_changes ORDER BY seen_at DESC,"
                                 f" change_id DESC LIMIT %s", (limit,)).fetchall()
        return [Change(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], int(r[6]), r[7],
                       None if r[8] is None else int(r[8]), r[9], r[10]) for r in rows]


@dataclass(frozen=True, slots=True)
class GovPoll:
    head: int
    cursor: int
    applied: list[int]
    rejected: list[int]


class GovWatcher(ChainWorker):
    role = "gov"

    def __init__(self, chain: ChainConfig, gov: Governance, rpc: Rpc, url: str, submit: Submit, *,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0) -> None:
        self.chain = chain
        self.gov = gov
        self.rpc = rpc
        self.store = GovStore(url)
        self.cursors = DepositStore(url)
        self.submit = submit
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.cursor_name = f"{chain.name}:gov"
        super().__init__()

    def poll_once(self) -> GovPoll:
        """Apply the confirmed decisions after the cursor, oldest first; move the cursor."""
        c = self.chain
        head = self.rpc.block_number()
        stored = self.cursors.cursor(self.cursor_name)
        cursor = c.start_block - 1 if stored is None else stored[0]
        if cursor > head:  # an embedded chain started over: read it again (gov_changes keeps what was done)
            log.warning("event=gov_chain_reset chain=%s old_cursor=%d head=%d", c.name, cursor, head)
            cursor = c.start_block - 1
        safe = head - c.confirmations + 1
        if safe <= cursor:
            return GovPoll(head, cursor, [], [])
        raw = self.rpc.get_logs(self.gov.params, [], max(cursor + 1, 0), safe)
        decisions = sorted((d for d in map(decode_decision, raw) if d is not None),
                           key=lambda d: (d.block_number, d.log_index))
        done = self.store.seen(c.chain_id, [d.change_id for d in decisions])
        applied: list[int] = []
        rejected: list[int] = []
        for d in decisions:
            if d.change_id in done:
                continue
            ref = reference(c.chain_id, d.change_id)
            try:
                seq, events = self.submit(d.command(ref))
            except TimeoutError:
                raise SequencerUnavailable(f"no reply for the decision {ref}") from None
            first = events[0] if events else (E.REJECTED, Reject.UNAVAILABLE.value, "no events")
            if first[0] != E.REJECTED:
                self.store.record(c.chain_id, d, "applied", seq, None)
                applied.append(d.change_id)
                log.info("event=gov_applied chain=%s ref=%s action=%s market=%s values=%s tx=%s seq=%d", c.name,
                         ref, d.action, d.market or "-", d.values, d.tx_hash, seq)
            elif first[1] == Reject.DUPLICATE_REFERENCE.value:
                self.store.record(c.chain_id, d, "applied", None, None)
                applied.append(d.change_id)
                log.info("event=gov_already_applied chain=%s ref=%s action=%s tx=%s", c.name, ref, d.action,
                         d.tx_hash)
            elif first[1] == Reject.UNAVAILABLE.value:
                raise SequencerUnavailable(f"the decision {ref}: {first[2]}")
            else:
                reason = f"{first[1]}: {first[2]}"
                self.store.record(c.chain_id, d, "rejected", None, reason)
                rejected.append(d.change_id)
                log.error("event=gov_rejected chain=%s ref=%s action=%s market=%s tx=%s reason=%r", c.name, ref,
                          d.action, d.market or "-", d.tx_hash, reason)
        self.cursors.save_cursor(self.cursor_name, safe, self.rpc.block_hash(safe))
        return GovPoll(head, safe, applied, rejected)

    def run(self, stop: threading.Event) -> None:
        """Poll every ``poll_seconds`` until ``stop`` is set; retry failures with back-off."""
        name = self.chain.name
        delay = self.backoff_initial
        failing_since: float | None = None
        log.info("event=gov_watcher_started chain=%s params=%s confirmations=%d", name, self.gov.params,
                 self.chain.confirmations)
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception as e:
                if failing_since is None:
                    failing_since = time.monotonic()
                    delay = self.backoff_initial
                log.warning("event=gov_watcher_failed chain=%s error=%r retry_in_s=%.1f", name, e, delay)
                stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            if failing_since is not None:
                log.info("event=gov_watcher_recovered chain=%s down_s=%.1f", name, time.monotonic() - failing_since)
                failing_since = None
            stop.wait(self.chain.poll_seconds)
        log.info("event=gov_watcher_stopped chain=%s", name)

    def stopped(self) -> None:
        self.store.close()
        self.cursors.close()
