"""History from the projection tables: orders, own trades and ledger entries (each with the running
balance after it, available + locked, and for a chain deposit or payout its chain and transaction
hash), newest first, with time ranges and cursor pagination, and one order by id or client id with
its fills. Projections trail the engine by the follower's lag; every answer says up to which
sequence number it is complete (``projected_seq``). The insurance fund's history: its balance at
the end of each time bucket and the net change by cause. The perpetuals' fundings."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from dpg.api.views import SIDE_NAMES, STATUS_NAMES, STP_NAMES, TYPE_NAMES, OrderView
from dpg.core.engine import MAX_CLIENT_ID
from dpg.core.model import INSURANCE_ACCOUNT, Asset, Market

MAX_LIMIT = 1000
FILLS_KEPT = 200  # an order's fills in an answer, as the views keep them

_SIDES = {name: v for v, name in SIDE_NAMES.items()}
_TYPES = {name: v for v, name in TYPE_NAMES.items()}
_STPS = {name: v for v, name in STP_NAMES.items()}
_STATUSES = {name: v for v, name in STATUS_NAMES.items()}
_ORDER = ("SELECT order_id, account, market, side, type, price, qty, quote_qty, client_id, stp, status, filled,"
          " filled_quote, reason, created_seq, created_ts, updated_seq, updated_ts, stop_price, triggered"
          " FROM orders WHERE account = %s AND ")
_FILLS = ("SELECT trade_id, price, qty, fee, role, sum(fee) OVER () FROM ("
          " SELECT trade_id, price, qty, taker_fee AS fee, 'taker' AS role FROM trades WHERE taker_order = %s"
          " UNION ALL"
          " SELECT trade_id, price, qty, maker_fee, 'maker' FROM trades WHERE maker_order = %s) f"
          " ORDER BY trade_id LIMIT %s")


def _range(where: list[str], args: list[Any], column: str, start_ms: int | None, end_ms: int | None) -> None:
    if start_ms is not None:
        where.append(f"{column} >= %s")
        args.append(start_ms * 1_000_000)
    if end_ms is not None:
        where.append(f"{column} < %s")
        args.append(end_ms * 1_000_000)


class History:
    def __init__(self, pool: AsyncConnectionPool, markets: list[Market], assets: list[Asset]) -> None:
        self.pool = pool
        self.markets = markets
        self.assets = assets

    def _market(self, symbol: str) -> Market:
        return next(m for m in self.markets if m.symbol == symbol)

    async def _rows(self, sql: str, args: list[Any]) -> tuple[int, list[tuple[Any, ...]]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT seq FROM projection_state WHERE name = 'tables'")
            row = await cur.fetchone()
            cur = await conn.execute(sql, args)
            return (int(row[0]) if row else 0), list(await cur.fetchall())

    async def orders(self, account: int, market: str | None, start_ms: int | None, end_ms: int | None,
                     before_id: int | None, limit: int) -> dict[str, Any]:
        where: list[str] = ["account = %s"]
        args: list[Any] = [account]
        if market:
            where.append("market = %s")
            args.append(market)
        _range(where, args, "created_ts", start_ms, end_ms)
        if before_id:
            where.append("order_id < %s")
            args.append(before_id)
        args.append(min(limit, MAX_LIMIT))
        projected, rows = await self._rows(
            "SELECT order_id, market, side, type, price, qty, quote_qty, client_id, status, filled, filled_quote,"
            f" reason, created_ts, updated_ts FROM orders WHERE {' AND '.join(where)}"
            " ORDER BY order_id DESC LIMIT %s", args)
        out = []
        for (oid, mk, side, typ, price, qty, qq, cid, status, filled, fq, reason, cts, uts) in rows:
            m = self._market(mk)
            out.append({"order_id": oid, "market": mk, "side": side, "type": typ,
                        "price": m.format_price(int(price)) if price else None,
                        "quantity": m.format_qty(int(qty)) if qty else None,
                        "quote_quantity": m.quote.format(int(qq)) if qq else None,
                        "client_order_id": cid or None, "status": status, "filled": m.format_qty(int(filled)),
                        "filled_quote": m.quote.format(int(fq)), "reason": reason or None,
                        "created_at": cts // 1_000_000, "updated_at": uts // 1_000_000})
        return {"projected_seq": projected, "orders": out,
                "next_before_id": out[-1]["order_id"] if len(out) == min(limit, MAX_LIMIT) else None}

    async def order(self, account: int, order_id: int = 0, client_id: str = "") -> OrderView | None:
        """One order of ``account`` by id (or else by client id) as the projections hold it, with its
        fills and fee: how a finished order is found once the views no longer hold it."""
        if not 0 <= order_id < 1 << 63 or (not order_id and not 0 < len(client_id) <= MAX_CLIENT_ID):
            return None  # no such order can exist
        by, key = ("order_id = %s", order_id) if order_id else ("client_id = %s", client_id)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # the order and its fills agree
            cur = await conn.execute(_ORDER + by, (account, key))
            row = await cur.fetchone()
            if row is None:
                return None
            cur = await conn.execute(_FILLS, (row[0], row[0], FILLS_KEPT))
            fills = await cur.fetchall()
        (oid, acct, mk, side, typ, price, qty, qq, cid, stp, status, filled, fq, reason, cseq, cts, useq, uts,
         stop, triggered) = row
        return OrderView(
            int(oid), int(acct), self._market(mk).index, _SIDES[side], _TYPES[typ], int(price), int(qty), int(qq),
            cid, _STPS[stp], status=_STATUSES[status], filled=int(filled), filled_quote=int(fq),
            fee=int(fills[0][5]) if fills else 0, reason=reason, created_seq=int(cseq), created_ts=int(cts),
            updated_seq=int(useq), updated_ts=int(uts), stop_price=int(stop), triggered=bool(triggered),
            fills=[{"trade_id": int(t), "price": int(p), "qty": int(q), "fee": int(f), "role": r}
                   for t, p, q, f, r, _ in fills])

    async def trades(self, account: int, market: str | None, start_ms: int | None, end_ms: int | None,
                     before_id: int | None, limit: int) -> dict[str, Any]:
        where: list[str] = ["(taker_account = %s OR maker_account = %s)"]
        args: list[Any] = [account, account]
        if market:
            where.append("market = %s")
            args.append(market)
        _range(where, args, "ts", start_ms, end_ms)
        if before_id:
            where.append("trade_id < %s")
            args.append(before_id)
        args.append(min(limit, MAX_LIMIT))
        projected, rows = await self._rows(
            "SELECT trade_id, seq, ts, market, price, qty, notional, taker_order, maker_order, taker_account,"
            f" taker_side, taker_fee, maker_fee FROM trades WHERE {' AND '.join(where)}"
            " ORDER BY trade_id DESC LIMIT %s", args)
        out = []
        for (tid, seq, ts, mk, price, qty, notional, t_oid, m_oid, t_acct, t_side, t_fee, m_fee) in rows:
            m = self._market(mk)
            taker = int(t_acct) == account
            side = t_side if taker else ("sell" if t_side == "buy" else "buy")
            fee_asset = m.base if side == "buy" else m.quote
            out.append({"trade_id": tid, "seq": seq, "time": ts // 1_000_000, "market": mk, "side": side,
                        "role": "taker" if taker else "maker", "order_id": t_oid if taker else m_oid,
                        "price": m.format_price(int(price)), "quantity": m.format_qty(int(qty)),
                        "quote_quantity": m.quote.format(int(notional)),
                        "fee": fee_asset.format(int(t_fee if taker else m_fee)), "fee_asset": fee_asset.symbol})
        return {"projected_seq": projected, "trades": out,
                "next_before_id": out[-1]["trade_id"] if len(out) == min(limit, MAX_LIMIT) else None}

    async def ledger(self, account: int, asset: str | None, start_ms: int | None, end_ms: int | None,
                     before: tuple[int, int] | None, limit: int) -> dict[str, Any]:
        where: list[str] = ["account = %s"]
        args: list[Any] = [account]
        if asset:
            where.append("asset = %s")
            args.append(asset)
        _range(where, args, "ts", start_ms, end_ms)
        if before:
            where.append("(seq, n) < (%s, %s)")
            args.extend(before)
        args.append(min(limit, MAX_LIMIT))
        projected, rows = await self._rows(
            "SELECT seq, n, ts, asset, d_available, d_locked, cause, balance, chain, tx_hash FROM ledger_entries"
            f" WHERE {' AND '.join(where)} ORDER BY seq DESC, n DESC LIMIT %s", args)
        by_symbol = {a.symbol: a for a in self.assets}
        out = [{"seq": seq, "n": n, "time": ts // 1_000_000, "asset": sym,
                "available": by_symbol[sym].format(int(da)), "locked": by_symbol[sym].format(int(dl)), "cause": cause,
                "balance": None if bal is None else by_symbol[sym].format(int(bal)), "chain": chain, "tx_hash": tx}
               for seq, n, ts, sym, da, dl, cause, bal, chain, tx in rows]
        return {"projected_seq": projected, "entries": out,
                "next_before": f"{out[-1]['seq']}:{out[-1]['n']}" if len(out) == min(limit, MAX_LIMIT) else None}

    async def fundings(self, markets: list[Market], start_ms: int | None, end_ms: int | None,
                       limit: int) -> list[dict[str, Any]]:
        """The fundings of ``markets`` (perpetuals), newest first: time (ms), seq, rate (RATE_SCALE
        units), mark, paid, received, to_insurance (base units), next funding time (ms)."""
        where: list[str] = ["market = ANY(%s)"]
        args: list[Any] = [[m.symbol for m in markets]]
        _range(where, args, "ts", start_ms, end_ms)
        args.append(min(limit, MAX_LIMIT))
        _, rows = await self._rows(
            "SELECT seq, ts, market, rate, mark, paid, received, to_insurance, next_funding FROM funding_rates"
            f" WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT %s", args)
        return [{"seq": int(seq), "time": int(ts) // 1_000_000, "market": mk, "rate": int(rate), "mark": int(mark),
                 "paid": int(paid), "received": int(received), "to_insurance": int(ins), "next_funding": int(nf)}
                for seq, ts, mk, rate, mark, paid, received, ins, nf in rows]

    async def insurance(self, asset: Asset, width_ns: int, end_ns: int, limit: int) -> dict[str, Any]:
        """The insurance fund in ``asset`` over the ``limit`` consecutive buckets of ``width_ns`` that
        end with the one holding ``end_ns``, oldest first: each bucket's start and end (ms), the
        balance at its end, the net change and the net change by cause (``fee``: its share of trading
        fees; ``liquidation``: liquidation fees; ``insurance``: bankrupt accounts' losses covered;
        ``realized`` and ``funding``: positions it took over). A bucket without entries carries the
        balance before it."""
        last = end_ns // width_ns
        first = last - min(limit, MAX_LIMIT) + 1
        bucket = f"ts / {int(width_ns)}"  # an int, written in: DISTINCT ON must match ORDER BY as written
        where = "account = %s AND asset = %s AND ts >= %s AND ts < %s"
        args = (INSURANCE_ACCOUNT, asset.symbol, first * width_ns, (last + 1) * width_ns)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # the three reads agree
            cur = await conn.execute("SELECT seq FROM projection_state WHERE name = 'tables'")
            row = await cur.fetchone()
            projected = int(row[0]) if row else 0
            cur = await conn.execute(
                "SELECT balance FROM ledger_entries WHERE account = %s AND asset = %s AND ts < %s"
                " ORDER BY seq DESC, n DESC LIMIT 1", (INSURANCE_ACCOUNT, asset.symbol, first * width_ns))
            row = await cur.fetchone()
            opening = int(row[0]) if row and row[0] is not None else 0
            cur = await conn.execute(
                f"SELECT {bucket}, cause, sum(d_available + d_locked) FROM ledger_entries WHERE {where}"
                " GROUP BY 1, 2", args)
            changes = await cur.fetchall()
            cur = await conn.execute(
                f"SELECT DISTINCT ON ({bucket}) {bucket}, balance FROM ledger_entries WHERE {where}"
                f" ORDER BY {bucket}, seq DESC, n DESC", args)
            closing = {int(b): bal for b, bal in await cur.fetchall()}
        by_bucket: dict[int, dict[str, int]] = {}
        for b, cause, d in changes:
            by_bucket.setdefault(int(b), {})[cause] = int(d)
        out = []
        balance = opening
        for b in range(first, last + 1):
            causes = by_bucket.get(b, {})
            net = sum(causes.values())
            stored = closing.get(b)
            balance = int(stored) if stored is not None else balance + net
            out.append({"start": b * width_ns // 1_000_000, "end": (b + 1) * width_ns // 1_000_000,
                        "balance": asset.format(balance), "change": asset.format(net),
                        "by_cause": {c: asset.format(d) for c, d in sorted(causes.items())}})
        return {"projected_seq": projected, "asset": asset.symbol, "buckets": out}
