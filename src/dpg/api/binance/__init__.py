"""The Binance spot dialect, so that existing bots (ccxt, freqtrade) point at DPG by changing a URL:
symbols like ``BTCUSDT``, decimal strings, Binance's field names and error codes
(``{"code": -1121, "msg": "Invalid symbol."}``) and signed requests, over the same state as DPG's
own API. ``codes`` (Binance's words for DPG's), ``reports`` (its JSON), ``rest`` (``/api/v3``),
``streams`` (market streams), ``ws_api`` (``/ws-api/v3``), and ``fapi`` (Binance USDⓈ-M futures'
REST under ``/fapi`` over the perpetuals, ``fstreams`` its listen key and streams)."""

from __future__ import annotations

from fastapi import APIRouter

from dpg.api.binance import fapi, fstreams, rest, streams, ws_api
from dpg.api.binance.codes import BinanceError, binance_error_handler
from dpg.api.runtime import Runtime

__all__ = ["BinanceError", "binance_error_handler", "router"]


def router(rt: Runtime) -> APIRouter:
    """Every route of the dialect over ``rt`` (its stream publishers join ``rt.publishers``)."""
    r = APIRouter()
    r.include_router(rest.router)
    r.include_router(rest.sapi)
    r.include_router(fapi.router)
    r.include_router(fstreams.fstreams(rt))
    r.include_router(streams.streams(rt))
    r.include_router(ws_api.ws_api(rt))
    return r
