"""The surveillance on PostgreSQL: it reads the projections (orders, trades, ledger entries) and the
identity and custody records that link accounts, never the engine; it writes alerts
(``surveillance_alerts``, once per key) and daily reports (``surveillance_reports``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dpg.config import SurveillanceSettings
from dpg.core.spot import STP_REASON  # the reason the orders projection holds for such an expiry
from dpg.surveillance.benford import MarketReport, report
from dpg.surveillance.model import LIVE, Alert, Book, Order, at, executions, merged
from dpg.surveillance.spoofing import layering, spoofing
from dpg.surveillance.wash import NS, Links, self_match, wash_pairs

log = logging.getLogger("dpg.surveillance")

_ORDER_COLS = ("order_id, account, market, side, type, price, qty, status, filled, reason, created_seq, updated_seq,"
               " created_ts, updated_ts, triggered")


def _order(row: Sequence[Any]) -> Order:
    (oid, acct, market, side, otype, price, qty, status, filled, reason, cseq, useq, cts, uts, trig) = row
    return Order(int(oid), int(acct), market, side, otype, int(price), int(qty), status, int(filled), reason,
                 int(cseq), int(useq), int(cts), int(uts), bool(trig))


@dataclass(frozen=True, slots=True)
class RunResult:
    start: int  # ns
    end: int
    found: list[Alert]
    new: list[Alert]  # those not stored before
    extended: list[Alert]  # episodes stored before, with executions found since

    def as_json(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for a in self.new:
            kinds[a.kind] = kinds.get(a.kind, 0) + 1
        return {"from": at(self.start).isoformat(), "to": at(self.end).isoformat(), "found": len(self.found),
                "new": len(self.new), "new_by_kind": kinds, "extended": len(self.extended)}


def detect(conn: psycopg.Connection[Any], s: SurveillanceSettings, start: int, end: int) -> list[Alert]:
    """Every alert whose anchor (the later side of a wash pair, the execution of spoofing or
    layering, the order self-trade prevention expired) is within [start, end] (ns)."""
    window = s.window * NS
    trades = [(int(t), int(q), int(ts), m, int(p), int(n), int(to), int(mo), int(ta), int(ma), side)
              for t, q, ts, m, p, n, to, mo, ta, ma, side in conn.execute(
                  "SELECT trade_id, seq, ts, market, price, qty, taker_order, maker_order, taker_account,"
                  " maker_account, taker_side FROM trades WHERE ts BETWEEN %s AND %s ORDER BY trade_id",
                  (start - window, end))]
    execs = executions(trades)
    # the orders of the window and before it (the books they met), and those still open
    orders = [_order(r) for r in conn.execute(
        f"SELECT {_ORDER_COLS} FROM orders WHERE created_ts BETWEEN %s AND %s"
        f" UNION SELECT {_ORDER_COLS} FROM orders WHERE status IN ('open', 'partially_filled') AND created_ts < %s",
        (start - 2 * window, end, start - 2 * window))]
    book = Book(orders)
    alerts: list[Alert] = []
    accounts = sorted({e.account for e in execs.values()})
    if accounts:
        alerts += wash_pairs(execs.values(), links(conn, accounts), s, start, end)
    for o in orders:
        if o.status == "expired" and o.reason == STP_REASON and start <= o.updated_ts <= end:
            alerts.append(self_match(o, _met(conn, o)))
    alerts += spoofing(execs.values(), orders, book, s, start, end)
    alerts += layering(execs.values(), orders, book, s, start, end)
    return alerts


def _met(conn: psycopg.Connection[Any], o: Order) -> Order | None:
    """The account's own order that ``o`` met when self-trade prevention expired it: the taker of
    that command when ``o`` rested, else the best of the account's crossing orders resting then."""
    other = "sell" if o.side == "buy" else "buy"
    if o.created_seq < o.updated_seq:  # o rested: the taker was placed by the command that expired it
        row = conn.execute(f"SELECT {_ORDER_COLS} FROM orders WHERE account = %s AND market = %s AND side = %s"
                           " AND created_seq = %s ORDER BY order_id LIMIT 1",
                           (o.account, o.market, other, o.updated_seq)).fetchone()
        return _order(row) if row else None
    cross = "" if not o.price else ("AND price <= %(p)s" if o.side == "buy" else "AND price >= %(p)s")
    row = conn.execute(
        f"SELECT {_ORDER_COLS} FROM orders WHERE account = %(a)s AND market = %(m)s AND side = %(s)s AND price > 0"
        f" AND created_seq < %(q)s AND (updated_seq >= %(q)s OR status IN {LIVE}) {cross}"
        f" ORDER BY price {'ASC' if other == 'sell' else 'DESC'}, order_id LIMIT 1",
        {"a": o.account, "m": o.market, "s": other, "q": o.updated_seq, "p": o.price}).fetchone()
    return _order(row) if row else None


def links(conn: psycopg.Connection[Any], accounts: list[int]) -> Links:
    """How the ``accounts`` are linked with any other account."""
    out = Links()
    for a, b, ip in conn.execute(
            "SELECT DISTINCT x.user_id, y.user_id, x.ip FROM sessions x JOIN sessions y"
            " ON y.ip = x.ip AND y.user_id > x.user_id WHERE x.user_id = ANY(%(a)s) OR y.user_id = ANY(%(a)s)",
            {"a": accounts}):
        out.add(int(a), int(b), {"by": "client_address", "address": ip})
    moves = conn.execute(
        "SELECT t.seq, t.ts, t.account, t.asset, t.d_available FROM ledger_entries t WHERE t.cause = 'transfer'"
        " AND t.seq IN (SELECT seq FROM ledger_entries WHERE cause = 'transfer' AND account = ANY(%s))"
        " ORDER BY t.seq, t.n", (accounts,)).fetchall()
    by_seq: dict[int, list[tuple[Any, ...]]] = {}
    for m in moves:
        by_seq.setdefault(int(m[0]), []).append(m)
    for seq, rows in by_seq.items():
        sent = [r for r in rows if r[4] < 0]
        got = [r for r in rows if r[4] > 0]
        for s in sent:
            for g in got:
                out.add(int(s[2]), int(g[2]), {"by": "transfer", "seq": seq, "at": at(int(s[1])).isoformat(),
                                               "from": int(s[2]), "to": int(g[2]), "asset": s[3],
                                               "amount": str(int(g[4]))})
    for wid, a, b, chain, address in conn.execute(
            "SELECT w.id, w.account, d.account, w.chain, w.to_address FROM withdrawals w JOIN deposit_addresses d"
            " ON d.chain = w.chain AND d.address = w.to_address WHERE w.status <> 'failed' AND w.account <> d.account"
            " AND (w.account = ANY(%(a)s) OR d.account = ANY(%(a)s))", {"a": accounts}):
        out.add(int(a), int(b), {"by": "funding", "withdrawal": wid, "from": int(a), "to": int(b), "chain": chain,
                                 "address": address})
    for a, b, chain, address in conn.execute(
            "SELECT x.account, y.account, x.chain, x.address FROM withdrawal_addresses x JOIN withdrawal_addresses y"
            " ON y.chain = x.chain AND y.address = x.address AND y.account > x.account"
            " WHERE x.account = ANY(%(a)s) OR y.account = ANY(%(a)s)", {"a": accounts}):
        out.add(int(a), int(b), {"by": "withdrawal_address", "chain": chain, "address": address})
    return out


def _ns(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1) * 1000


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def save(conn: psycopg.Connection[Any], alerts: list[Alert]) -> tuple[list[Alert], list[Alert]]:
    """Insert the alerts not stored yet (by key), and add to a stored episode the executions it
    did not list; (the new alerts, the episodes extended)."""
    new: list[Alert] = []
    extended: list[Alert] = []
    with conn.transaction():
        inserted: set[str] = set()
        if alerts:
            with conn.cursor() as cur:  # one pipeline of inserts, each row's parameters sent as they are
                cur.executemany(
                    "INSERT INTO surveillance_alerts (key, kind, market, accounts, window_start, window_end, evidence,"
                    " score, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING"
                    " RETURNING key",
                    [(a.key, a.kind, a.market, list(a.accounts), at(a.window_start), at(a.window_end),
                      Jsonb(a.evidence), a.score, a.details) for a in alerts], returning=True)
                while True:
                    row = cur.fetchone()
                    if row is not None:
                        inserted.add(row[0])
                    if not cur.nextset():
                        break
        for a in alerts:
            if a.key in inserted:
                new.append(a)
                continue
            if "execution_orders" not in a.evidence:
                continue
            old = conn.execute("SELECT evidence, window_start, window_end, score FROM surveillance_alerts"
                               " WHERE key = %s FOR UPDATE", (a.key,)).fetchone()
            m = merged(old[0], _ns(old[1]), _ns(old[2]), old[3], a) if old else None
            if m is not None:
                conn.execute("UPDATE surveillance_alerts SET window_start = %s, window_end = %s, evidence = %s,"
                             " score = %s, details = %s WHERE key = %s",
                             (at(m.window_start), at(m.window_end), Jsonb(m.evidence), m.score, m.details, m.key))
                extended.append(m)
    return new, extended


def run(url: str, s: SurveillanceSettings, start: int, end: int) -> RunResult:
    """Search [start, end] (ns) and store what is new."""
    with psycopg.connect(url) as conn:
        found = detect(conn, s, start, end)
        conn.commit()
        new, extended = save(conn, found)
    for a in new:
        log.warning("event=surveillance_alert kind=%s market=%s accounts=%s key=%s", a.kind, a.market,
                    ",".join(map(str, a.accounts)), a.key)
    log.info("event=surveillance_run from=%s to=%s found=%d new=%d extended=%d", at(start).isoformat(),
             at(end).isoformat(), len(found), len(new), len(extended))
    return RunResult(start, end, found, new, extended)


def alerts(url: str, *, kind: str | None = None, market: str | None = None, account: int | None = None,
           limit: int = 20) -> list[dict[str, Any]]:
    """The newest stored alerts, newest first."""
    where, args = [], []
    for clause, value in (("kind = %s", kind), ("market = %s", market), ("%s = ANY(accounts)", account)):
        if value is not None:
            where.append(clause)
            args.append(value)
    sql = ("SELECT id, kind, market, accounts, detected_at, window_start, window_end, score, details, evidence"
           " FROM surveillance_alerts" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY id DESC LIMIT %s")
    with psycopg.connect(url) as conn:
        rows = conn.execute(sql, (*args, limit)).fetchall()
    return [{"id": r[0], "kind": r[1], "market": r[2], "accounts": list(r[3]), "detected_at": r[4].isoformat(),
             "window_start": r[5].isoformat(), "window_end": r[6].isoformat(), "score": r[7], "details": r[8],
             "evidence": r[9]} for r in rows]


def day_bounds(day: date) -> tuple[int, int]:
    """[start, end) of a UTC day in ns."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(start.timestamp()) * NS, int((start + timedelta(days=1)).timestamp()) * NS


def daily_reports(url: str, s: SurveillanceSettings, day: date, market: str | None = None) -> list[MarketReport]:
    """The report of each market that traded on ``day`` (UTC), from the trades projection."""
    lo, hi = day_bounds(day)
    sizes: dict[str, list[int]] = {}
    with psycopg.connect(url) as conn:
        for m, qty in conn.execute("SELECT market, qty FROM trades WHERE ts >= %s AND ts < %s"
                                   + (" AND market = %s" if market else "") + " ORDER BY trade_id",
                                   (lo, hi, market) if market else (lo, hi)):
            sizes.setdefault(m, []).append(int(qty))
    return [report(m, day.isoformat(), q, s.benford_alpha, s.benford_min_trades) for m, q in sorted(sizes.items())]


def store_reports(url: str, s: SurveillanceSettings, day: date) -> int:
    """Compute and keep ``day``'s reports unless kept already; how many were written."""
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT 1 FROM surveillance_reports WHERE day = %s LIMIT 1", (day,)).fetchone():
            return 0
    reports = daily_reports(url, s, day)
    with psycopg.connect(url) as conn, conn.transaction():
        for r in reports:
            conn.execute("INSERT INTO surveillance_reports (day, market, trades, report, benford_pass)"
                         " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (day, r.market, r.trades, json.dumps(r.as_json()), r.passed))
    if reports:
        log.info("event=surveillance_report day=%s markets=%d failed=%s", day, len(reports),
                 ",".join(r.market for r in reports if r.passed is False) or "-")
    return len(reports)
