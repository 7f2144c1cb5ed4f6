"""What the withdrawal pipeline keeps in PostgreSQL (migrations 0010_withdrawals.sql and
0013_custody.sql): the chains custody runs on, users' address allow-lists, withdrawals with their
signatures, reviews, transactions and timeline.

Used by the pipeline's threads and by the operator's and signers' commands; one connection per
store, one thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from dpg.chain.config import ChainConfig
from dpg.chain.signer import Terms
from dpg.chain.store import Connected
from dpg.store import audit

OPEN = ("requesting", "signing", "signed", "broadcast", "confirming", "queued", "cancelling")
CANCELLED_BY_USER = "cancelled by the user"


class WithdrawalClosed(ValueError):
    """The withdrawal takes no more signatures: it is past signing (or cancelled)."""

    def __init__(self, wid: str, status: str) -> None:
        super().__init__(f"withdrawal {wid} is {status}: it takes no more signatures")
        self.status = status


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A row of ``withdrawals``."""

    id: str
    account: int
    asset: str
    amount: int
    chain: str
    chain_id: int
    vault: str
    token: str
    to_address: str
    deadline: int
    status: str
    required: int
    confirmations: int
    tx_hash: str | None
    block_number: int | None
    executable_at: int | None
    reason: str | None
    request_seq: int | None
    done_seq: int | None
    created_at: datetime
    updated_at: datetime

    def terms(self) -> Terms:
        return Terms(self.id, self.account, self.token, self.to_address, self.amount, self.deadline, self.chain_id,
                     self.vault)


COLUMNS = ("id, account, asset, amount, chain, chain_id, vault, token, to_address, deadline, status,"
           " required, confirmations, tx_hash, block_number, executable_at, reason, request_seq, done_seq,"
           " created_at, updated_at")


def row(r: tuple[Any, ...]) -> Withdrawal:
    def opt(v: Any) -> int | None:
        return None if v is None else int(v)

    return Withdrawal(r[0], int(r[1]), r[2], int(r[3]), r[4], int(r[5]), r[6], r[7], r[8], int(r[9]), r[10],
                      int(r[11]), int(r[12]), r[13], opt(r[14]), opt(r[15]), r[16], opt(r[17]), opt(r[18]), r[19],
                      r[20])


@dataclass(frozen=True, slots=True)
class SentTx:
    tx_hash: str
    purpose: str  # withdraw, execute
    sender: str
    nonce: int
    max_fee: int
    priority_fee: int
    raw: str
    sent_at: datetime


def signer_actor(signer: str, kind: str) -> str:
    """How the audit log names a signer: ``signer:0x…`` (a person's key) or ``policy-signer:0x…``."""
    return f"{'policy-signer' if kind == 'policy' else 'signer'}:{signer.lower()}"


class WithdrawalStore(Connected):
    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._c().execute(sql, params)
            return cur.fetchall() if cur.description else []

    # ------------------------------------------------------------------ chains

    def save_chain(self, chain: ChainConfig, signers: list[str]) -> None:
        tokens = [{"symbol": t.symbol, "asset": t.asset, "address": t.address, "decimals": t.decimals}
                  for t in chain.tokens]
        self._q(
            "INSERT INTO chains (name, chain_id, rpc_url, vault, confirmations, native_asset, tokens, signers)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET chain_id = excluded.chain_id,"
            " rpc_url = excluded.rpc_url, vault = excluded.vault, confirmations = excluded.confirmations,"
            " native_asset = excluded.native_asset,"
            " tokens = excluded.tokens, signers = excluded.signers, updated_at = now()",
            (chain.name, chain.chain_id, chain.rpc_url, chain.vault, chain.confirmations, chain.native_asset,
             Jsonb(tokens), Jsonb([s.lower() for s in signers])),
        )

    def chain(self, name: str) -> dict[str, Any] | None:
        rows = self._q("SELECT name, chain_id, rpc_url, vault, confirmations, native_asset, tokens, signers"
                       " FROM chains WHERE name = %s", (name,))
        if not rows:
            return None
        n, cid, rpc_url, vault, conf, native, tokens, signers = rows[0]
        return {"name": n, "chain_id": int(cid), "rpc_url": rpc_url, "vault": vault, "confirmations": int(conf),
                "native_asset": native,
                "tokens": tokens, "signers": signers}

    # ------------------------------------------------------------------ withdrawals

    def get(self, wid: str) -> Withdrawal | None:
        rows = self._q(f"SELECT {COLUMNS} FROM withdrawals WHERE id = %s", (wid,))
        return row(rows[0]) if rows else None

    def open(self, chain: str | None = None) -> list[Withdrawal]:
        if chain is None:
            rows = self._q(f"SELECT {COLUMNS} FROM withdrawals WHERE status = ANY(%s) ORDER BY created_at",
                           (list(OPEN),))
        else:
            rows = self._q(f"SELECT {COLUMNS} FROM withdrawals WHERE chain = %s AND status = ANY(%s)"
                           " ORDER BY created_at", (chain, list(OPEN)))
        return [row(r) for r in rows]

    def recent(self, limit: int = 50) -> list[Withdrawal]:
        return [row(r) for r in self._q(f"SELECT {COLUMNS} FROM withdrawals ORDER BY created_at DESC LIMIT %s",
                                        (limit,))]

    def create(self, wid: str, account: int, asset: str, amount: int, chain: ChainConfig, token: str, to: str,
               deadline: int) -> None:
        """A withdrawal of the exchange's own (the stakers' payout) to ``to``, allow-listed for it:
        recorded as ``requesting`` before its RequestWithdrawal is journaled, as the API records a user's."""
        with self._lock:
            conn = self._c()
            with conn.transaction():
                conn.execute("INSERT INTO withdrawal_addresses (account, chain, address) VALUES (%s, %s, %s)"
                             " ON CONFLICT DO NOTHING", (account, chain.name, to))
                conn.execute(
                    "INSERT INTO withdrawals (id, account, asset, amount, chain, chain_id, vault, token, to_address,"
                    " deadline, status, required) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'requesting', %s)",
                    (wid, account, asset, amount, chain.name, chain.chain_id, chain.vault, token, to, deadline,
                     chain.confirmations))

    def discard(self, wid: str) -> None:
        """Forget a withdrawal the engine refused (still ``requesting``)."""
        self._q("DELETE FROM withdrawals WHERE id = %s AND status = 'requesting'", (wid,))

    def completed_without(self, account: int, chain: str, step: str) -> list[Withdrawal]:
        """``account``'s completed withdrawals on ``chain`` whose timeline has no ``step`` yet, oldest first."""
        return [row(r) for r in self._q(
            f"SELECT {COLUMNS} FROM withdrawals w WHERE account = %s AND chain = %s AND status = 'completed'"
            " AND NOT EXISTS (SELECT 1 FROM withdrawal_events e WHERE e.withdrawal_id = w.id AND e.step = %s)"
            " ORDER BY created_at", (account, chain, step))]

    def update(self, wid: str, step: str | None = None, detail: str = "", expect: str | None = None,
               **fields: Any) -> bool:
        """Set ``fields`` of a withdrawal and, with ``step``, add it to the timeline; one transaction.
        With ``expect``, only while its status is that one; returns whether it was updated."""
        allowed = {"status", "confirmations", "tx_hash", "block_number", "executable_at", "reason", "request_seq",
                   "done_seq"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown withdrawal fields {sorted(unknown)}")
        with self._lock:
            conn = self._c()
            with conn.transaction():
                if fields:
                    sets = ", ".join(f"{k} = %s" for k in fields)
                    cur = conn.execute(f"UPDATE withdrawals SET {sets}, updated_at = now() WHERE id = %s"
                                       f" AND (%s::text IS NULL OR status = %s)",
                                       (*fields.values(), wid, expect, expect))
                    if cur.rowcount != 1:
                        return False
                if step:
                    conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail) VALUES (%s, %s, %s)",
                                 (wid, step, detail))
        return True

    def events(self, wid: str) -> list[tuple[datetime, str, str]]:
        return [(r[0], r[1], r[2]) for r in self._q(
            "SELECT at, step, detail FROM withdrawal_events WHERE withdrawal_id = %s ORDER BY at", (wid,))]

    # ------------------------------------------------------------------ signatures and reviews

    def signatures(self, wid: str) -> dict[str, str]:
        return {r[0]: r[1] for r in self._q(
            "SELECT signer, signature FROM withdrawal_signatures WHERE withdrawal_id = %s", (wid,))}

    def add_signature(self, wid: str, signer: str, signature: str, kind: str, by: str = "") -> bool:
        """Store a signature (checked by the caller); False when this signer had already signed,
        WithdrawalClosed when the withdrawal is no longer signing. The withdrawal's row is locked
        meanwhile, so a signature and the user's cancel (``DELETE /api/v1/withdrawals/{id}``) never
        both succeed on the third signature. The decision is in the audit log, in the same
        transaction (``by``: who ran the signing command, when a person did)."""
        with self._lock:
            conn = self._c()
            with conn.transaction():
                row = conn.execute("SELECT status FROM withdrawals WHERE id = %s FOR UPDATE", (wid,)).fetchone()
                if row is None or row[0] != "signing":
                    raise WithdrawalClosed(wid, row[0] if row else "unknown")
                cur = conn.execute(
                    "INSERT INTO withdrawal_signatures (withdrawal_id, signer, signature, kind) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING", (wid, signer.lower(), signature.lower(), kind))
                if cur.rowcount != 1:
                    return False
                n = conn.execute("SELECT count(*) FROM withdrawal_signatures WHERE withdrawal_id = %s",
                                 (wid,)).fetchone()
                count = int(n[0]) if n else 0
                conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail) VALUES (%s, %s, %s)",
                             (wid, f"signed {min(count, 3)}/3", f"{kind} signer {signer.lower()}"))
                audit.record(conn, signer_actor(signer, kind), "signer.sign",
                             {"withdrawal": wid, "signatures": count, **({"by": by} if by else {})})
        return True

    def cancel(self, wid: str, reason: str) -> bool:
        """Mark ``wid`` cancelling while it has fewer than 3 signatures and nothing was sent (the row
        locked against a third signature, as the user's cancel does); False when it is too late."""
        with self._lock:
            conn = self._c()
            with conn.transaction():
                row = conn.execute("SELECT status FROM withdrawals WHERE id = %s FOR UPDATE", (wid,)).fetchone()
                counts = conn.execute(
                    "SELECT (SELECT count(*) FROM withdrawal_signatures WHERE withdrawal_id = %s),"
                    " EXISTS (SELECT 1 FROM withdrawal_transactions WHERE withdrawal_id = %s)", (wid, wid)).fetchone()
                if row is None or row[0] != "signing" or counts is None or int(counts[0]) >= 3 or counts[1]:
                    return False
                conn.execute("UPDATE withdrawals SET status = 'cancelling', reason = %s, updated_at = now()"
                             " WHERE id = %s", (reason, wid))
                conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail) VALUES (%s, 'cancelled', %s)",
                             (wid, reason))
        return True

    def reviews(self, wid: str) -> dict[str, tuple[str, str]]:
        return {r[0]: (r[1], r[2]) for r in self._q(
            "SELECT signer, decision, reason FROM withdrawal_reviews WHERE withdrawal_id = %s", (wid,))}

    def add_review(self, wid: str, signer: str, decision: str, reason: str, by: str = "") -> None:
        """A policy signer's decline or a person's rejection, in the timeline and the audit log."""
        with self._lock:
            conn = self._c()
            with conn.transaction():
                cur = conn.execute(
                    "INSERT INTO withdrawal_reviews (withdrawal_id, signer, decision, reason) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING", (wid, signer.lower(), decision, reason))
                if cur.rowcount == 1:
                    conn.execute("INSERT INTO withdrawal_events (withdrawal_id, step, detail) VALUES (%s, %s, %s)",
                                 (wid, f"review {decision}", f"{signer.lower()}: {reason}"))
                    audit.record(conn, signer_actor(signer, "policy" if decision == "declined" else "human"),
                                 f"signer.{'decline' if decision == 'declined' else 'reject'}",
                                 {"withdrawal": wid, "reason": reason, **({"by": by} if by else {})})

    # ------------------------------------------------------------------ policy inputs

    def outflow(self, account: int, asset: str, hours: int = 24) -> int:
        """What ``account`` withdrew or is withdrawing of ``asset`` in the last ``hours`` (failed excluded)."""
        rows = self._q("SELECT coalesce(sum(amount), 0) FROM withdrawals WHERE account = %s AND asset = %s"
                       " AND status <> 'failed' AND created_at > now() - make_interval(hours => %s)",
                       (account, asset, hours))
        return int(rows[0][0])

    def forced_request(self, wid: str) -> str | None:
        """The vault's forced withdrawal request a withdrawal serves (0021_forced_withdrawals.sql), or None."""
        rows = self._q("SELECT request_id FROM forced_withdrawals WHERE withdrawal_id = %s", (wid,))
        return str(rows[0][0]) if rows else None

    def allowed(self, account: int, chain: str, address: str) -> bool:
        """Whether ``address`` is on the account's allow-list and past its waiting period."""
        return bool(self._q("SELECT 1 FROM withdrawal_addresses WHERE account = %s AND chain = %s AND address = %s"
                            " AND usable_at <= now()", (account, chain, address.lower())))

    # ------------------------------------------------------------------ transactions

    def add_tx(self, wid: str, tx: SentTx) -> None:
        self._q("INSERT INTO withdrawal_transactions (tx_hash, withdrawal_id, purpose, sender, nonce, max_fee,"
                " priority_fee, raw, sent_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tx_hash) DO NOTHING",
                (tx.tx_hash, wid, tx.purpose, tx.sender, tx.nonce, tx.max_fee, tx.priority_fee, tx.raw, tx.sent_at))

    def txs(self, wid: str, purpose: str | None = None) -> list[SentTx]:
        rows = self._q("SELECT tx_hash, purpose, sender, nonce, max_fee, priority_fee, raw, sent_at"
                       " FROM withdrawal_transactions WHERE withdrawal_id = %s AND (%s::text IS NULL OR purpose = %s)"
                       " ORDER BY sent_at", (wid, purpose, purpose))
        return [SentTx(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), r[6], r[7]) for r in rows]

    def timeline(self, wid: str) -> dict[str, Any]:
        """Everything about one withdrawal, for operators and signers."""
        w = self.get(wid)
        if w is None:
            raise KeyError(wid)
        return {"withdrawal": w, "signatures": self.signatures(wid), "reviews": self.reviews(wid),
                "txs": self.txs(wid), "events": self.events(wid)}

