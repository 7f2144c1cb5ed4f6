"""The deposit-address sweeper of one chain: funds that arrive at the accounts' deposit addresses
(``dpg.chain.forwarder``) are moved into the vault, tagged with the account, by
``ForwarderFactory.sweep`` sent with the broadcaster key; the deposit watcher then credits the
vault's Deposit event after the chain's confirmations, like any deposit: exactly once.

A poll:

1. follows the sweeps in flight: mined, at the chain's depth (done), reverted, or dropped (its
   nonce went to another transaction, or its block left the chain); the arrivals of a dropped or
   reverted sweep wait again;
2. scans the ERC-20 ``Transfer`` logs of the chain's tokens to the issued addresses, from the last
   final block to the head (the unconfirmed window again at every poll): new arrivals are recorded
   ``received``, and those whose block left the chain ``orphaned``;
3. reads the native balance of every issued address (no log tells of a plain ETH transfer, nor of
   one made by a contract), and each token's balance at an address issued since the last poll
   (funds sent before it was watched);
4. sweeps, at each address with no sweep in flight, the assets whose balance is at least the
   chain's minimum (``ChainConfig.min_sweep_of``): dust waits there until more arrives. Nothing to
   sweep, no transaction: an empty forwarder is never swept.

When: as soon as the funds are in the head block. Waiting for the chain's depth before sweeping
would double the time to a credit and protect nothing: the credit waits until the vault's Deposit
event is ``confirmations`` deep, and a sweep's block comes after the transfer's, so a reorganisation
that removes the transfer removes the sweep too, or leaves one that finds nothing to move.

Who pays the gas: the exchange, with the broadcaster key (``DPG_BROADCASTER_KEY``), which never
holds users' funds: a sweep only moves them from the forwarder into the vault. Its nonce is taken
under the same lock as the withdrawals' (``broadcaster.sending``).

Restart-safe: the issued addresses, the scan's cursor, arrivals and sweeps are in PostgreSQL
(0014_deposit_addresses.sql), and a sweep is recorded before it is sent, so a restarted sweeper
follows it rather than sending another, and scans from where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eth_abi.abi import decode
from eth_account.signers.local import LocalAccount
from psycopg.types.json import Jsonb

from dpg.chain.broadcaster import fees, send_raw, sending, sign_tx
from dpg.chain.config import NATIVE, ChainConfig
from dpg.chain.contracts import DEPOSIT_TOPIC, encode_call
from dpg.chain.forwarder import (
    TRANSFER_TOPIC,
    Factory,
    FactoryMismatch,
    TransferLog,
    check_factory,
    decode_transfer,
    sweep_call,
)
from dpg.chain.rpc import Rpc, RpcError, RpcUnavailable, to_int
from dpg.chain.store import Connected, _locked
from dpg.chain.worker import ChainWorker

log = logging.getLogger("dpg.chain.sweeper")

MAX_RANGES_PER_POLL = 50  # block ranges one poll reads; a long catch-up takes several polls
TOPICS_PER_CALL = 100  # deposit addresses per eth_getLogs (a list of ``to`` topics)

# Gives ``account`` its address on ``chain`` (the API and ``dpg wallet deposit --plain`` issue them):
# parameters (chain, account, address).
ISSUE = ("INSERT INTO deposit_addresses (chain, account, address) VALUES (%s, %s, %s)"
         " ON CONFLICT (chain, account) DO NOTHING")


@dataclass(frozen=True, slots=True)
class Sweep:
    """A row of ``deposit_sweeps``."""

    tx_hash: str
    chain: str
    account: int
    address: str
    tokens: dict[str, int]  # token -> balance seen when sent
    sender: str
    nonce: int
    raw: str
    status: str
    block_number: int | None


@dataclass(frozen=True, slots=True)
class Arrival:
    """A row of ``deposit_arrivals``."""

    chain: str
    address: str
    account: int
    asset: str
    token: str
    amount: int
    tx_hash: str | None
    log_index: int | None
    block_number: int
    status: str
    sweep_tx: str | None


_SWEEP_COLUMNS = "tx_hash, chain, account, address, tokens, sender, nonce, raw, status, block_number"
_ARRIVAL_COLUMNS = "chain, address, account, asset, token, amount, tx_hash, log_index, block_number, status, sweep_tx"


def _sweep(r: tuple[Any, ...]) -> Sweep:
    return Sweep(r[0], r[1], int(r[2]), r[3], {k: int(v) for k, v in r[4].items()}, r[5], int(r[6]), r[7], r[8],
                 None if r[9] is None else int(r[9]))


def _arrival(r: tuple[Any, ...]) -> Arrival:
    return Arrival(r[0], r[1], int(r[2]), r[3], r[4], int(r[5]), r[6], None if r[7] is None else int(r[7]),
                   int(r[8]), r[9], r[10])


class SweepStore(Connected):
    """The sweeper's tables (0014_deposit_addresses.sql)."""

    # ------------------------------------------------------------------ the factory, the addresses

    @_locked
    def save_factory(self, chain: ChainConfig, f: Factory) -> None:
        """Record the chain's checked factory (another factory than before starts the scan over)."""
        minimum = {asset: str(chain.min_sweep_of(asset))
                   for asset in {t.asset for t in chain.tokens} | ({chain.native_asset} - {""})}
        self._c().execute(
            "INSERT INTO deposit_address_chains (chain, factory, implementation, code_hash, min_sweep)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (chain) DO UPDATE SET factory = excluded.factory,"
            " implementation = excluded.implementation, code_hash = excluded.code_hash,"
            " min_sweep = excluded.min_sweep, scanned_to = CASE WHEN deposit_address_chains.factory"
            " = excluded.factory THEN deposit_address_chains.scanned_to END, updated_at = now()",
            (chain.name, f.address, f.implementation, f.code_hash, Jsonb(minimum)))

    @_locked
    def factory(self, chain: str) -> Factory | None:
        row = self._c().execute("SELECT factory, implementation, code_hash FROM deposit_address_chains"
                                " WHERE chain = %s", (chain,)).fetchone()
        return None if row is None else Factory(row[0], row[1], row[2])

    @_locked
    def issue(self, chain: str, account: int, address: str) -> None:
        self._c().execute(ISSUE, (chain, account, address))

    @_locked
    def addresses(self, chain: str) -> dict[str, tuple[int, bool]]:
        """The issued addresses of ``chain``: address -> (account, balances checked once)."""
        rows = self._c().execute("SELECT address, account, checked FROM deposit_addresses WHERE chain = %s",
                                 (chain,)).fetchall()
        return {r[0]: (int(r[1]), bool(r[2])) for r in rows}

    @_locked
    def mark_checked(self, chain: str, address: str) -> None:
        self._c().execute("UPDATE deposit_addresses SET checked = true WHERE chain = %s AND address = %s",
                          (chain, address))

    @_locked
    def cursor(self, chain: str) -> int | None:
        row = self._c().execute("SELECT scanned_to FROM deposit_address_chains WHERE chain = %s",
                                (chain,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    @_locked
    def save_cursor(self, chain: str, block: int) -> None:
        self._c().execute("UPDATE deposit_address_chains SET scanned_to = %s, updated_at = now() WHERE chain = %s",
                          (block, chain))

    # ------------------------------------------------------------------ arrivals

    @_locked
    def record_transfers(self, chain: str, seen: list[tuple[TransferLog, int, str]], from_block: int,
                         to_block: int) -> tuple[int, int]:
        """In one transaction: the token transfers (log, account, asset) of blocks ``from_block`` ..
        ``to_block`` as the chain has them now: new ones ``received``, one seen in another block
        moved there, and those of that window the chain no longer has ``orphaned`` (swept or not: a
        sweep after them left the chain with them, or moved nothing). Returns (new, orphaned)."""
        c = self._c()
        with c.transaction():
            orphaned = c.execute(
                "UPDATE deposit_arrivals SET status = 'orphaned' WHERE chain = %s AND status <> 'orphaned'"
                " AND tx_hash IS NOT NULL AND block_number BETWEEN %s AND %s"
                " AND (tx_hash, log_index) NOT IN (SELECT * FROM unnest(%s::text[], %s::int[]))",
                (chain, from_block, to_block, [t.tx_hash for t, _, _ in seen], [t.log_index for t, _, _ in seen]),
            ).rowcount
            new = 0
            for t, account, asset in seen:
                row = c.execute(
                    "INSERT INTO deposit_arrivals (chain, address, account, asset, token, amount, tx_hash, log_index,"
                    " block_number, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'received')"
                    " ON CONFLICT (chain, tx_hash, log_index) DO UPDATE SET block_number = excluded.block_number,"
                    " status = CASE deposit_arrivals.status WHEN 'orphaned' THEN 'received'"
                    " ELSE deposit_arrivals.status END RETURNING (xmax = 0)",
                    (chain, t.to, account, asset, t.token, t.amount, t.tx_hash, t.log_index, t.block_number),
                ).fetchone()
                new += bool(row and row[0])
        return new, orphaned

    @_locked
    def note_balance(self, chain: str, address: str, account: int, asset: str, token: str, amount: int,
                     block: int) -> bool:
        """Funds waiting at ``address`` that no log tells of (the native coin; a token sent before the
        address was watched): one ``received`` row per token while they wait, its amount set to
        ``amount`` (> 0). True when the row is new."""
        row = self._c().execute(
            "INSERT INTO deposit_arrivals (chain, address, account, asset, token, amount, block_number, status)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 'received')"
            " ON CONFLICT (chain, address, token) WHERE status = 'received' AND tx_hash IS NULL"
            " DO UPDATE SET amount = excluded.amount RETURNING (xmax = 0)",
            (chain, address, account, asset, token, amount, block),
        ).fetchone()
        return bool(row and row[0])

    @_locked
    def gone(self, chain: str, address: str, token: str) -> int:
        """``token`` left ``address`` without a sweep of ours (someone else called sweep): its waiting
        arrivals are swept (the vault's Deposit, if any, is credited by the watcher)."""
        return self._c().execute(
            "UPDATE deposit_arrivals SET status = 'swept' WHERE chain = %s AND address = %s AND token = %s"
            " AND status = 'received'", (chain, address, token)).rowcount

    @_locked
    def waiting(self, chain: str) -> dict[str, dict[str, int]]:
        """Address -> token -> what its arrivals not yet swept add up to, of those a log tells of."""
        out: dict[str, dict[str, int]] = {}
        for address, token, logged in self._c().execute(
                "SELECT address, token, sum(amount) FILTER (WHERE tx_hash IS NOT NULL) FROM deposit_arrivals"
                " WHERE chain = %s AND status = 'received' GROUP BY address, token", (chain,)).fetchall():
            out.setdefault(address, {})[token] = int(logged or 0)
        return out

    @_locked
    def arrivals(self, chain: str | None = None, account: int | None = None) -> list[Arrival]:
        rows = self._c().execute(
            f"SELECT {_ARRIVAL_COLUMNS} FROM deposit_arrivals WHERE (%s::text IS NULL OR chain = %s::text)"
            f" AND (%s::numeric IS NULL OR account = %s::numeric) ORDER BY id",
            (chain, chain, account, account)).fetchall()
        return [_arrival(r) for r in rows]

    # ------------------------------------------------------------------ sweeps

    @_locked
    def add_sweep(self, s: Sweep) -> None:
        """Record a sweep about to be sent; the arrivals of its tokens at its address are swept by it."""
        c = self._c()
        with c.transaction():
            c.execute(f"INSERT INTO deposit_sweeps ({_SWEEP_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                      (s.tx_hash, s.chain, s.account, s.address, Jsonb({k: str(v) for k, v in s.tokens.items()}),
                       s.sender, s.nonce, s.raw, s.status, s.block_number))
            c.execute("UPDATE deposit_arrivals SET status = 'swept', sweep_tx = %s WHERE chain = %s AND address = %s"
                      " AND status = 'received' AND token = ANY(%s)", (s.tx_hash, s.chain, s.address, list(s.tokens)))

    @_locked
    def set_sweep(self, tx_hash: str, status: str, block_number: int | None = None, gas_used: int | None = None,
                  *, deposited: bool = True) -> None:
        """A sweep's new status; a reverted or dropped one gives its arrivals back to wait, and one
        that deposited nothing (``deposited`` False: the funds had left by another sweep) unlinks them."""
        c = self._c()
        with c.transaction():
            c.execute("UPDATE deposit_sweeps SET status = %s, block_number = %s, gas_used = coalesce(%s, gas_used),"
                      " updated_at = now() WHERE tx_hash = %s", (status, block_number, gas_used, tx_hash))
            if status in ("reverted", "dropped"):
                c.execute("UPDATE deposit_arrivals SET status = 'received', sweep_tx = NULL WHERE sweep_tx = %s"
                          " AND status = 'swept'", (tx_hash,))
            elif not deposited:
                c.execute("UPDATE deposit_arrivals SET sweep_tx = NULL WHERE sweep_tx = %s", (tx_hash,))

    @_locked
    def sweeps(self, chain: str, status: Iterable[str] | None = None) -> list[Sweep]:
        wanted = None if status is None else list(status)
        rows = self._c().execute(
            f"SELECT {_SWEEP_COLUMNS} FROM deposit_sweeps WHERE chain = %s AND (%s::text[] IS NULL OR status = ANY(%s))"
            f" ORDER BY sent_at, nonce", (chain, wanted, wanted)).fetchall()
        return [_sweep(r) for r in rows]


@dataclass(frozen=True, slots=True)
class SweepResult:
    head: int
    sent: list[str] = field(default_factory=list)  # the sweeps sent in this poll
    arrived: int = 0  # token transfers and native balances newly seen


class Sweeper(ChainWorker):
    role = "sweeper"

    def __init__(self, chain: ChainConfig, rpc: Rpc, store: SweepStore, key: LocalAccount, *,
                 retry_after: float = 60.0, backoff_initial: float = 0.5, backoff_max: float = 30.0) -> None:
        """``key``: the broadcaster key, which pays the gas; ``retry_after``: seconds before an
        address whose sweep would revert (a paused vault, a token it refuses) is tried again."""
        if not chain.forwarder_factory:
            raise ValueError(f"chain {chain.name} has no forwarder factory")
        self.chain = chain
        self.rpc = rpc
        self.store = store
        self.key = key
        self.retry_after = retry_after
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.factory: Factory | None = None
        self._failed: dict[str, float] = {}  # address -> when its last sweep would or did revert
        super().__init__()

    def check(self) -> Factory:
        """The configured factory is DPG's, for this vault; recorded for the API's addresses."""
        c = self.chain
        self.factory = check_factory(self.rpc, c.forwarder_factory, c.vault)
        self.store.save_factory(c, self.factory)
        log.info("event=sweeper_checked chain=%s factory=%s implementation=%s", c.name, self.factory.address,
                 self.factory.implementation)
        return self.factory

    # ------------------------------------------------------------------ one poll

    def poll_once(self) -> SweepResult:
        c = self.chain
        factory = self.factory or self.check()
        head = self.rpc.block_number()
        self._follow(head)
        addresses = self.store.addresses(c.name)
        arrived = self._scan(head, addresses)
        waiting = self.store.waiting(c.name)
        busy = {s.address for s in self.store.sweeps(c.name, ("sent",))}
        all_tokens = {t.address for t in c.tokens}
        sent: list[str] = []
        for address, (account, checked) in sorted(addresses.items()):
            if address in busy or time.monotonic() - self._failed.get(address, -1e9) < self.retry_after:
                continue
            logged = waiting.get(address, {})
            tokens = set(logged) | (all_tokens if not checked else set())
            if c.native_asset:
                tokens.add(NATIVE)
            balances = {t: self._balance(address, t) for t in sorted(tokens)}
            for token, balance in balances.items():
                unlogged = balance - logged.get(token, 0)
                if (token == NATIVE or not checked) and unlogged > 0:
                    arrived += self.store.note_balance(c.name, address, account, self._asset(token), token, unlogged,
                                                       head)
                elif balance == 0 and token in logged:
                    self.store.gone(c.name, address, token)
            if not checked:
                self.store.mark_checked(c.name, address)
            worth = {t: b for t, b in balances.items() if b > 0 and b >= c.min_sweep_of(self._asset(t))}
            if worth:
                tx = self._sweep(factory, address, account, worth)
                if tx:
                    sent.append(tx)
        return SweepResult(head, sent, arrived)

    def _asset(self, token: str) -> str:
        t = self.chain.token_at(token)
        return t.asset if t is not None else ""

    def _balance(self, address: str, token: str) -> int:
        if token == NATIVE:
            return self.rpc.balance(address)
        (value,) = decode(["uint256"], self.rpc.eth_call(token, encode_call("balanceOf(address)", address)))
        return int(value)

    def _scan(self, head: int, addresses: dict[str, tuple[int, bool]]) -> int:
        """Token transfers to the issued addresses from the last final block to the head; returns how
        many are new."""
        c = self.chain
        cursor = self.store.cursor(c.name)
        if cursor is None:  # the first scan: what came before is found by the addresses' first balance check
            cursor = max(c.start_block, head - c.confirmations + 1) - 1
        frm, scanned_to, ranges = cursor + 1, cursor, 0
        seen: list[tuple[TransferLog, int, str]] = []
        topics = ["0x" + a[2:].rjust(64, "0") for a in sorted(addresses)]
        while scanned_to < head and ranges < MAX_RANGES_PER_POLL and topics:
            start, end = scanned_to + 1, min(head, scanned_to + c.max_block_range)
            for token in c.tokens:
                for i in range(0, len(topics), TOPICS_PER_CALL):
                    raw = self.rpc.call("eth_getLogs", [{
                        "address": token.address, "topics": [TRANSFER_TOPIC, None, topics[i:i + TOPICS_PER_CALL]],
                        "fromBlock": hex(start), "toBlock": hex(end)}])
                    for entry in raw if isinstance(raw, list) else []:
                        t = decode_transfer(entry)
                        if t is None or t.token != token.address or t.to not in addresses or t.amount == 0 \
                                or not start <= t.block_number <= end:
                            continue
                        seen.append((t, addresses[t.to][0], token.asset))
            scanned_to, ranges = end, ranges + 1
        new = 0
        if scanned_to >= frm:
            new, orphaned = self.store.record_transfers(c.name, seen, frm, scanned_to)
            for t, account, asset in seen:
                log.info("event=deposit_address_transfer chain=%s address=%s account=%d asset=%s amount=%d tx=%s"
                         " block=%d", c.name, t.to, account, asset, t.amount, t.tx_hash, t.block_number)
            if orphaned:
                log.warning("event=deposit_address_transfers_orphaned chain=%s count=%d from=%d to=%d", c.name,
                            orphaned, frm, scanned_to)
        final = min(scanned_to, head - c.confirmations) if topics else head - c.confirmations
        if final > cursor:
            self.store.save_cursor(c.name, final)
        return new

    def _follow(self, head: int) -> None:
        """Move each sweep in flight on: mined, done at the depth, reverted or dropped."""
        c = self.chain
        for s in self.store.sweeps(c.name, ("sent", "mined")):
            r = self.rpc.receipt(s.tx_hash)
            block = to_int(r["blockNumber"]) if r is not None and r.get("blockNumber") else None
            if r is None or block is None or self.rpc.block_hash(block) != str(r.get("blockHash", "")).lower():
                if s.status == "mined":
                    self.store.set_sweep(s.tx_hash, "dropped")
                    log.warning("event=sweep_reorged_out chain=%s tx=%s address=%s", c.name, s.tx_hash, s.address)
                elif to_int(self.rpc.call("eth_getTransactionCount", [s.sender, "latest"])) > s.nonce:
                    self.store.set_sweep(s.tx_hash, "dropped")
                    log.warning("event=sweep_dropped chain=%s tx=%s nonce=%d", c.name, s.tx_hash, s.nonce)
                else:
                    try:
                        send_raw(self.rpc, s.raw)  # a node that lost it (a restart) gets it again
                    except RpcError as e:
                        self.store.set_sweep(s.tx_hash, "dropped")
                        self._failed[s.address] = time.monotonic()
                        log.error("event=sweep_refused chain=%s tx=%s error=%r", c.name, s.tx_hash, e.message)
                continue
            gas = to_int(r.get("gasUsed", "0x0"))
            if to_int(r["status"]) != 1:
                self.store.set_sweep(s.tx_hash, "reverted", block, gas)
                self._failed[s.address] = time.monotonic()
                log.error("event=sweep_reverted chain=%s tx=%s address=%s account=%d", c.name, s.tx_hash, s.address,
                          s.account)
                continue
            if head - block + 1 >= c.confirmations:
                deposited = any(str(lg.get("address", "")).lower() == c.vault
                                and [str(t).lower() for t in lg.get("topics", [])][:1] == [DEPOSIT_TOPIC]
                                for lg in r.get("logs", []))
                self.store.set_sweep(s.tx_hash, "done", block, gas, deposited=deposited)
                log.info("event=sweep_done chain=%s tx=%s address=%s account=%d block=%d gas=%d deposited=%s",
                         c.name, s.tx_hash, s.address, s.account, block, gas, deposited)
            elif s.status != "mined" or s.block_number != block:
                self.store.set_sweep(s.tx_hash, "mined", block, gas)
                log.info("event=sweep_mined chain=%s tx=%s address=%s block=%d gas=%d", c.name, s.tx_hash,
                         s.address, block, gas)

    def _sweep(self, factory: Factory, address: str, account: int, balances: dict[str, int]) -> str | None:
        """Send ``sweep(account, tokens)``; its hash, or None when it would revert (tried again later)."""
        c = self.chain
        data = sweep_call(account, sorted(balances))
        sender = self.key.address.lower()
        try:
            gas = to_int(self.rpc.call("eth_estimateGas", [{"from": sender, "to": factory.address, "data": data}]))
        except RpcError as e:
            self._failed[address] = time.monotonic()
            log.error("event=sweep_would_revert chain=%s address=%s account=%d error=%r retry_in_s=%.0f", c.name,
                      address, account, e.message, self.retry_after)
            return None
        with sending(c.chain_id, sender):
            nonce = to_int(self.rpc.call("eth_getTransactionCount", [sender, "pending"]))
            tip, max_fee = fees(self.rpc)
            raw, tx_hash = sign_tx(self.key, c.chain_id, factory.address, data, nonce, gas * 5 // 4 + 10_000, tip,
                                   max_fee)
            self.store.add_sweep(Sweep(tx_hash, c.name, account, address, balances, sender, nonce, raw, "sent", None))
            try:
                send_raw(self.rpc, raw)
            except RpcError as e:
                self.store.set_sweep(tx_hash, "dropped")
                self._failed[address] = time.monotonic()
                log.error("event=sweep_refused chain=%s tx=%s address=%s error=%r", c.name, tx_hash, address,
                          e.message)
                return None
        log.info("event=sweep_sent chain=%s tx=%s address=%s account=%d nonce=%d tokens=%s", c.name, tx_hash, address,
                 account, nonce, ",".join(f"{self._asset(t)}:{b}" for t, b in sorted(balances.items())))
        return tx_hash

    # ------------------------------------------------------------------ running

    def run(self, stop: threading.Event) -> None:
        """Poll every ``poll_seconds`` until ``stop`` is set; retry failures with back-off."""
        name = self.chain.name
        delay = self.backoff_initial
        log.info("event=sweeper_started chain=%s factory=%s", name, self.chain.forwarder_factory)
        while not stop.is_set():
            try:
                self.poll_once()
                delay = self.backoff_initial
            except Exception as e:
                if isinstance(e, RpcUnavailable | RpcError):
                    event, level = "chain_unavailable", logging.WARNING
                elif isinstance(e, psycopg.Error):
                    event, level = "database_unavailable", logging.WARNING
                elif isinstance(e, FactoryMismatch):
                    event, level = "sweeper_refused", logging.ERROR
                else:
                    event, level = "sweeper_failed", logging.ERROR
                log.log(level, "event=%s chain=%s error=%r retry_in_s=%.1f", event, name, e, delay,
                        exc_info=event == "sweeper_failed")
                stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            stop.wait(self.chain.poll_seconds)
        log.info("event=sweeper_stopped chain=%s", name)

    def stopped(self) -> None:
        self.store.close()
