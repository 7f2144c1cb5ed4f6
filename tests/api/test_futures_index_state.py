"""The futures market view shows a perpetual's stale index (IndexStale), loaded from the engine and
followed through the committed events."""

from __future__ import annotations

import json

from dpg.api.futures import FuturesViews
from dpg.core import events as E
from dpg.core.commands import IndexPrice, IndexStale
from tests.core.helpers import USDT
from tests.core.test_futures import BI, B, PerpDesk


def test_the_market_view_follows_the_index_state() -> None:
    d = PerpDesk()
    d.index(B, 50_000)
    views = FuturesViews(d.engine.markets, d.engine.assets)
    views.load(d.engine)
    pv = views.perps[BI]
    assert views.market_json(pv)["index_stale"] is False
    for cmd in (IndexStale(B), IndexPrice(B, 51_000 * USDT)):
        events = d.apply(cmd)
        views.apply(d.seq, d.seq * 1000, events)
        assert views.market_json(pv)["index_stale"] is isinstance(cmd, IndexStale)
    d.apply(IndexStale(B))
    again = FuturesViews(d.engine.markets, d.engine.assets)
    again.load(d.engine)  # an API process started while the index is stale
    assert again.market_json(again.perps[BI])["index_stale"] is True


def test_the_mark_channel_says_when_the_index_turns_stale_and_valid_again() -> None:
    """A subscriber of ``mark:<perp>`` gets a message at IndexStale (no MarkPrice then) and one, not
    two, at the IndexPrice that ends it; the snapshot of the channel says the state too."""
    from typing import Any, cast

    from dpg.api.runtime import Runtime
    from dpg.api.ws import Client

    d = PerpDesk()
    d.index(B, 50_000)
    stub = cast(Any, type("Stub", (), {"on_revoke": []})())
    rt = Runtime(stub, d.engine, stub, stub, "admin")
    client = Client(cast(Any, None), "127.0.0.1")
    rt.hub.subscribe(client, f"mark:{B}")
    market = d.engine.market_by_symbol[B]
    assert rt.mark_json(market)["index_stale"] is False

    def messages() -> list[dict[str, Any]]:
        out = []
        while not client.outbox.empty():
            text = client.outbox.get_nowait()
            assert text is not None
            out.append(json.loads(text))
        return out

    for cmd, stale in ((IndexStale(B), True), (IndexPrice(B, 51_000 * USDT), False)):
        events = d.apply(cmd)
        rt.on_batch([(d.seq, d.seq * 1000, events)])
        (msg,) = messages()
        assert (msg["channel"], msg["type"], msg["seq"]) == (f"mark:{B}", "mark", d.seq)
        assert msg["data"]["index_stale"] is stale and rt.mark_json(market)["index_stale"] is stale
    assert msg["data"]["index_price"] == "51000.00"


def test_an_order_refused_for_a_stale_index_is_a_409_conflict() -> None:
    from dpg.api.errors import rejection
    from dpg.core.errors import Reject

    d = PerpDesk()
    d.index(B, 50_000)
    d.apply(IndexStale(B))
    d.open(1)
    d.fund(1, "USDT", 10_000 * USDT)
    (ev,) = d.perp(1, "buy", 50_000, 0.01)
    assert ev[0] == E.REJECTED and ev.code == Reject.INDEX_STALE
    err = rejection(ev.code, ev.reason)
    assert (err.status, err.code) == (409, "INDEX_STALE")
