"""The futures market view shows a perpetual's stale index (IndexStale), loaded from the engine and
followed through the committed events."""

from __future__ import annotations

from dpg.api.futures import FuturesViews
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
