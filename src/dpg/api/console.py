"""What the operator's console reads (``dpg.api.routes.console``): the exchange's health (the
journal's head, the projection follower's lag, each custody chain's head and the deposit watcher's
lag behind it, the last proof-of-reserves epochs), withdrawals waiting for a person's signature,
surveillance alerts with their evidence, the audit log with its verification, and the backups in
the backup folder with their verification state.

Backups are read from a listing of the folder (``DPG_BACKUP_DIR``): each file or folder not ending
in ``.verified.json`` is a backup; a sibling ``<name>.verified.json`` holding ``{"ok": true|false,
"verified_at": …, "detail": …}`` is its verification, written by whatever verified it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dpg.chain.withdrawals import COLUMNS, row
from dpg.store import audit

VERIFIED = ".verified.json"
RPC_TIMEOUT = 2.0  # seconds the console waits for a chain's head


async def _rows(pool: AsyncConnectionPool, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat() if ts is not None else None


def _chain_head(rpc_url: str) -> int:
    from dpg.chain.rpc import Rpc

    return Rpc(rpc_url, timeout=RPC_TIMEOUT).block_number()


async def chains(pool: AsyncConnectionPool) -> list[dict[str, Any]]:
    """Each custody chain: the node's head block (null when it does not answer) and the deposit
    watcher's cursor, the blocks between them being its lag."""
    rows = await _rows(pool, "SELECT c.name, c.chain_id, c.rpc_url, k.block_number, k.updated_at FROM chains c"
                             " LEFT JOIN chain_cursors k ON k.chain = c.name ORDER BY c.name")

    async def one(name: str, chain_id: int, rpc_url: str, cursor: int | None, at: datetime | None) -> dict[str, Any]:
        try:
            head: int | None = await asyncio.to_thread(_chain_head, rpc_url)
            error = ""
        except Exception as e:  # any failure to reach the node is shown, never raised
            head, error = None, type(e).__name__
        return {"chain": name, "chain_id": int(chain_id), "head": head, "watched": cursor,
                "lag": head - cursor if head is not None and cursor is not None else None,
                "watched_at": _iso(at), "error": error}

    return list(await asyncio.gather(*(one(*r) for r in rows)))


async def health(pool: AsyncConnectionPool, engine_seq: int) -> dict[str, Any]:
    (journal, projected, marked, marked_seq, published, published_at, assets), = await _rows(pool, """
        SELECT (SELECT coalesce(max(seq), 0) FROM journal),
               (SELECT seq FROM projection_state WHERE name = 'tables'),
               e.epoch, e.seq, p.epoch, p.at, p.assets
        FROM (SELECT 1) one
        LEFT JOIN (SELECT epoch, seq FROM por_epochs ORDER BY epoch DESC LIMIT 1) e ON true
        LEFT JOIN (SELECT epoch, max(published_at) AS at, count(*) AS assets FROM por_publications
                   GROUP BY epoch ORDER BY epoch DESC LIMIT 1) p ON true""")
    return {
        "journal": {"seq": int(journal), "engine_seq": engine_seq},
        "follower": {"seq": int(projected or 0), "lag": int(journal) - int(projected or 0)},
        "chains": await chains(pool),
        "por": {"last_marked": int(marked) if marked is not None else None,
                "last_marked_seq": int(marked_seq) if marked_seq is not None else None,
                "last_published": int(published) if published is not None else None,
                "published_at": _iso(published_at), "assets": int(assets or 0)},
    }


async def awaiting_signatures(pool: AsyncConnectionPool, amount: Callable[[str, int], str]) -> list[dict[str, Any]]:
    """Withdrawals in ``signing``, oldest first, with the signatures and reviews they have;
    ``amount(asset, base units)`` writes their amounts."""
    rows = await _rows(pool, f"SELECT {COLUMNS} FROM withdrawals WHERE status = 'signing' ORDER BY created_at")
    ws = [row(r) for r in rows]
    sigs = await _rows(pool, "SELECT withdrawal_id, signer, kind FROM withdrawal_signatures"
                             " WHERE withdrawal_id = ANY(%s)", ([w.id for w in ws],))
    reviews = await _rows(pool, "SELECT withdrawal_id, signer, decision, reason FROM withdrawal_reviews"
                                " WHERE withdrawal_id = ANY(%s)", ([w.id for w in ws],))
    out = []
    for w in ws:
        signed = [{"signer": s, "kind": k} for wid, s, k in sigs if wid == w.id]
        out.append({"id": w.id, "account": w.account, "asset": w.asset, "amount": amount(w.asset, w.amount),
                    "base_units": str(w.amount), "chain": w.chain,
                    "to": w.to_address, "deadline": w.deadline, "signatures": signed,
                    "reviews": [{"signer": s, "decision": d, "reason": why} for wid, s, d, why in reviews
                                if wid == w.id],
                    "needs": max(0, 3 - len(signed))})
    return out


async def alerts(pool: AsyncConnectionPool, limit: int) -> list[dict[str, Any]]:
    """Surveillance alerts, newest first; none while the surveillance table does not exist."""
    exists, = (await _rows(pool, "SELECT to_regclass('surveillance_alerts') IS NOT NULL"))[0]
    if not exists:
        return []
    rows = await _rows(pool, "SELECT id, kind, market, accounts, detected_at, window_start, window_end, evidence"
                             " FROM surveillance_alerts ORDER BY detected_at DESC, id DESC LIMIT %s", (limit,))
    return [{"id": int(i), "kind": kind, "market": market, "accounts": [int(a) for a in accounts or []],
             "detected_at": _iso(at), "window_start": _iso(start), "window_end": _iso(end), "evidence": evidence}
            for i, kind, market, accounts, at, start, end, evidence in rows]


async def audit_log(pool: AsyncConnectionPool, limit: int, before: int | None, action: str | None) -> dict[str, Any]:
    """The newest audit entries and the verification of the whole chain."""
    verdict = await audit.verify_async(pool)
    rows = await audit.entries_async(pool, limit, before, action)
    return {"verify": verdict.as_json(), "entries": [e.as_json() for e in rows]}


def backups(folder: Path | None) -> dict[str, Any]:
    """The backup archives in ``folder``, newest first, each with its verification state: ``verified``,
    ``failed`` or ``unverified`` (an unreadable verification counts as failed)."""
    if folder is None or not folder.is_dir():
        return {"dir": str(folder) if folder else None, "backups": []}
    out = []
    for p in folder.iterdir():
        if p.name.endswith(VERIFIED) or p.name.startswith(".") or not p.is_file():
            continue  # a verification, a partial file, the shipped journal's folder
        st = p.stat()
        size = st.st_size
        item: dict[str, Any] = {"name": p.name, "size": size,
                                "modified": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
                                "state": "unverified", "verified_at": None, "detail": ""}
        mark = folder / f"{p.name}{VERIFIED}"
        if mark.is_file():
            try:
                v = json.loads(mark.read_text())
                ok = v.get("ok") is True
                item.update(state="verified" if ok else "failed", verified_at=v.get("verified_at"),
                            detail=str(v.get("detail", ""))[:500])
            except (OSError, ValueError, AttributeError):
                item.update(state="failed", detail=f"{mark.name} is unreadable")
        out.append(item)
    out.sort(key=lambda b: str(b["modified"]), reverse=True)
    return {"dir": str(folder), "backups": out}
