"""The proof of reserves over HTTP: the published epochs and their reserves reports (public), a
logged-in user's own proof per asset (private), and a plain page of the latest report at /por.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations as objects.)"""

import asyncio
import html
import json
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from psycopg.types.json import Jsonb

from dpg.api.deps import Auth
from dpg.api.errors import ApiError
from dpg.api.presentation import json_response
from dpg.api.runtime import Runtime
from dpg.por import proofs
from dpg.por import tree as por
from dpg.por.publish import load_private_tree

TREE_CACHE = 4  # (epoch, asset) trees kept in memory: a day's assets


def router(rt: Runtime) -> APIRouter:
    """The routes over ``rt``; a proof is the caller's own (``dpg.api.deps.Auth``)."""
    r = APIRouter()
    trees: OrderedDict[tuple[int, str], por.Tree] = OrderedDict()
    lock = asyncio.Lock()

    async def rows(sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async with rt.history.pool.connection() as conn:
            cur = await conn.execute(sql, args)
            return list(await cur.fetchall())

    async def epochs_json(limit: int) -> list[dict[str, Any]]:
        found = await rows(
            "SELECT e.epoch, e.seq, r.ok FROM por_epochs e LEFT JOIN por_reports r USING (epoch)"
            " ORDER BY e.epoch DESC LIMIT %s", (limit,))
        if not found:
            return []
        pubs = await rows(
            "SELECT epoch, asset, chain_id, registry, root, total, depth, leaves, cid, snapshot_block, tx_hash"
            " FROM por_publications WHERE epoch = ANY(%s) ORDER BY asset", ([int(f[0]) for f in found],))
        funds = {(int(e), str(a)): (b, tx) for e, a, b, tx in await rows(
            "SELECT epoch, asset, balance, tx_hash FROM por_insurance WHERE epoch = ANY(%s)",
            ([int(f[0]) for f in found],))}
        by_epoch: dict[int, list[dict[str, Any]]] = {}
        for epoch, asset, chain_id, registry, root, total, depth, leaves, cid, block, tx in pubs:
            fund = funds.get((int(epoch), str(asset)))
            by_epoch.setdefault(int(epoch), []).append({
                "asset": asset, "chainId": str(chain_id), "registry": registry, "root": root, "total": str(total),
                "depth": depth, "accounts": leaves, "cid": cid, "snapshotBlock": block, "tx": tx,
                "insuranceFund": str(fund[0]) if fund else None, "insuranceFundTx": fund[1] if fund else None})
        return [{"epoch": str(e), "seq": str(seq), "reportOk": ok, "published": by_epoch.get(int(e), [])}
                for e, seq, ok in found]

    @r.get("/api/v1/por/registry", tags=["public"])
    async def registry() -> Response:
        """Where the roots are published: the registry's chain id and address, and a JSON-RPC URL
        of that chain to read them from (null when the exchange gives none out), for verifiers and
        the browser's proof page."""
        found = await rows("SELECT chain, chain_id, registry, rpc_url FROM por_registry")
        if not found:
            raise ApiError(404, "NO_REGISTRY", "the proof of reserves is not published on a chain yet")
        chain, chain_id, address, rpc_url = found[0]
        return json_response({"chain": chain, "chainId": str(chain_id), "registry": address, "rpcUrl": rpc_url or None})

    @r.get("/api/v1/por/epochs", tags=["public"])
    async def epochs(limit: Annotated[int, Query(ge=1, le=1000)] = 30) -> Response:
        """Proof-of-reserves epochs, newest first, with what was published in the registry for each."""
        return json_response(await epochs_json(limit))

    async def report_of(epoch: int) -> dict[str, Any]:
        found = await rows("SELECT report FROM por_reports WHERE epoch = %s", (epoch,))
        if not found:
            raise ApiError(404, "NO_REPORT", f"no reserves report for epoch {epoch}")
        doc = found[0][0]
        return dict(doc if isinstance(doc, dict) else json.loads(doc))

    @r.get("/api/v1/por/report/{epoch}", tags=["public"])
    async def report(epoch: int) -> Response:
        """The reserves report of an epoch: per asset each chain's vault holdings at its snapshot
        block, the liabilities (the tree's total), the ratio and the declarations."""
        if not 0 <= epoch < 2**63:
            raise ApiError(404, "NO_REPORT", f"no reserves report for epoch {epoch}")
        return json_response(await report_of(epoch))

    async def tree_of(epoch: int, asset: str) -> por.Tree:
        key = (epoch, asset)
        async with lock:
            t = trees.get(key)
            if t is not None:
                trees.move_to_end(key)
                return t
            found = await rows("SELECT tree FROM por_trees WHERE epoch = %s AND asset = %s", key)
            if not found:
                raise ApiError(404, "NO_PROOF", f"nothing of {asset} was published for epoch {epoch}")
            t = await asyncio.to_thread(load_private_tree, bytes(found[0][0]))
            trees[key] = t
            while len(trees) > TREE_CACHE:
                trees.popitem(last=False)
            return t

    @r.get("/api/v1/por/proof", tags=["private"])
    async def proof(p: Auth,
                    asset: Annotated[str, Query(min_length=1, max_length=20)],
                    epoch: Annotated[int | None, Query(ge=0, lt=2**63)] = None) -> Response:
        """The logged-in user's proof for an asset (the latest published epoch by default): check it
        with ``dpg por verify``, the /proof page or any verifier of docs/proof-of-reserves.md."""
        symbol = asset.upper()
        if epoch is None:
            latest = await rows("SELECT max(epoch) FROM por_publications WHERE asset = %s", (symbol,))
            if not latest or latest[0][0] is None:
                if not any(a.symbol == symbol for a in rt.assets):
                    raise ApiError(404, "UNKNOWN_ASSET", f"unknown asset {asset!r}")
                held = await rows("SELECT 1 FROM chains WHERE native_asset = %s OR tokens @> %s",
                                  (symbol, Jsonb([{"asset": symbol}])))
                if not held:
                    raise ApiError(404, "NOT_ON_CHAIN", f"{symbol} is held off chain (no custody chain carries it), "
                                   "so it is not in the proof of reserves")
                raise ApiError(404, "NO_PROOF", f"nothing of {symbol} has been published yet: the first epoch is "
                               "published after the next daily snapshot (or `dpg por snapshot`)")
            epoch = int(latest[0][0])
        found = await stored_proof(epoch, symbol, str(p.user_id))
        if found is not None:
            return json_response(found)
        t = await tree_of(epoch, symbol)  # an epoch published before the proof tables
        try:
            return json_response(por.proof(t, str(p.user_id)))
        except por.ProofError:
            raise ApiError(404, "NO_PROOF", f"the account had no {symbol} at epoch {epoch}") from None

    async def stored_proof(epoch: int, asset: str, account: str) -> dict[str, Any] | None:
        """The proof from the proof tables (dpg.por.proofs); None when this tree is not in them."""
        async with rt.history.pool.connection() as conn:
            cur = await conn.execute("SELECT chain_id, registry, depth, leaf_version FROM por_publications"
                                     " WHERE epoch = %s AND asset = %s", (epoch, asset))
            pub = await cur.fetchone()
            if pub is None:
                raise ApiError(404, "NO_PROOF", f"nothing of {asset} was published for epoch {epoch}")
            params = por.Params(int(pub[0]), str(pub[1]), epoch, asset)
            found = await proofs.aread(conn, params, int(pub[2]), account, int(pub[3]))
            if found is not None:
                return found
            cur = await conn.execute("SELECT 1 FROM por_proof_nodes WHERE epoch = %s AND asset = %s AND level = 0"
                                     " AND chunk = 0", (epoch, asset))
            if await cur.fetchone() is not None:
                raise ApiError(404, "NO_PROOF", f"the account had no {asset} at epoch {epoch}")
            return None

    @r.get("/por", include_in_schema=False)
    async def page() -> HTMLResponse:
        listed = await epochs_json(1)
        body = ["<h1>DPG proof of reserves</h1>"]
        if not listed or listed[0]["reportOk"] is None:
            body.append("<p>No reserves report has been published yet.</p>")
        else:
            rep = await report_of(int(listed[0]["epoch"]))
            e = html.escape
            verdict = "every asset covered" if rep.get("ok") else "NOT every asset covered"
            body.append(f"<p>Epoch {e(rep['epoch'])} (journal seq {e(rep['seq'])}): <b>{verdict}</b>. Registry "
                        f"<code>{e(rep['registry']['address'])}</code> on chain {e(rep['registry']['chainId'])}. "
                        f"<a href=\"/api/v1/por/report/{e(rep['epoch'])}\">JSON</a></p>")
            body.append("<table><tr><th>Asset</th><th>Liabilities</th><th>Reserves</th><th>Ratio</th>"
                        "<th>Reserves by chain (block)</th><th>Root</th><th>Tree (IPFS CID)</th>"
                        "<th>Insurance fund</th></tr>")
            for a in rep["assets"]:
                chains = "<br>".join(f"{e(c['chain'])}: {e(c['holdings'])} ({c['block']})" for c in a["reserves"])
                body.append(f"<tr><td>{e(a['asset'])}</td><td>{e(a['liabilities'])}</td><td>{e(a['reservesTotal'])}"
                            f"</td><td>{e(str(a['ratio']))}</td><td>{chains}</td><td><code>{e(a['root'])}</code></td>"
                            f"<td><code>{e(a['cid'])}</code>{' ' + e(a['error']) if a.get('error') else ''}</td>"
                            f"<td>{e(a.get('insuranceFund', '-'))}</td></tr>")
            body.append("</table><p>Amounts in base units. USDT liabilities are each user's equity (balance plus"
                        " unrealized PnL of their perpetuals at the epoch's mark prices, floored at zero); the"
                        " insurance fund's balance is published in the registry beside the root."
                        " Check your balance: <code>dpg por verify PROOF.json</code>"
                        " with your proof from <code>/api/v1/por/proof?asset=…</code>; audit a whole tree: "
                        "<code>dpg por audit CID</code>.</p>")
            body.append("<p>Each leaf also commits the account's exit address (<code>exitAddress</code> in the"
                        " proof) and its deposited and withdrawn counters on the home Vault: if the exchange stops"
                        " serving withdrawals, the exit address can claim the balance from the Vault. An account"
                        " without an exit address (<code>0x000…0</code>) can prove its balance but not escape"
                        " with it; register one with <code>POST /api/v1/exit-address</code>"
                        " (<code>GET</code> gives the typed data to sign).</p>")
        doc = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>DPG proof of reserves</title></head><body>"
               + "".join(body) + "</body></html>")
        return HTMLResponse(doc, headers={"Cache-Control": "no-cache"})

    return r
