"""The Binance dialect, driven by ccxt's own ``binance`` class (pinned) pointed at a running DPG."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest

from tests.api.client import User, exchange

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def base(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from dpg.store import db

    url = db.create_scratch(pg_server, "dpg_test_binance")
    try:
        with exchange(url, tmp_path_factory.mktemp("binance")) as b:
            yield b
    finally:
        db.drop(url)


def client(base: str) -> ccxt.binance:
    api = f"{base}/api/v3"
    return ccxt.binance({
        "urls": {"api": {"public": api, "private": api, "v1": api, "sapi": api}},
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "adjustForTimeDifference": False},
        "timeout": 20_000,
    })


def test_ccxt_reads_markets_books_trades_candles_and_tickers(base: str) -> None:
    maker, taker = User(base, "maker@binance.dpg"), User(base, "taker@binance.dpg")
    maker.credit("BTC", "1")
    taker.credit("USDT", "100000")
    assert maker.order(market="BTC/USDT", side="sell", price="50000", quantity="0.3").status_code == 201
    assert maker.order(market="BTC/USDT", side="sell", price="50100", quantity="0.2").status_code == 201
    assert taker.order(market="BTC/USDT", side="buy", price="50000", quantity="0.1").status_code == 201

    ex = client(base)
    markets = ex.load_markets()
    btc = markets["BTC/USDT"]
    assert (btc["base"], btc["quote"], btc["spot"]) == ("BTC", "USDT", True)
    assert Decimal(str(btc["precision"]["price"])) == Decimal("0.01")
    assert Decimal(str(btc["precision"]["amount"])) == Decimal("0.0001")
    assert btc["limits"]["cost"]["min"] == 5
    book = ex.fetch_order_book("BTC/USDT")
    assert book["asks"][:2] == [[50000.0, 0.2], [50100.0, 0.2]] and book["bids"] == []
    assert book["nonce"] == maker.http.get("/api/v1/depth", params={"market": "BTC/USDT"}).json()["seq"]
    trades = ex.fetch_trades("BTC/USDT")
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == [(50000.0, 0.1, "buy")]
    candles = ex.fetch_ohlcv("BTC/USDT", "1m")
    assert candles[-1][1:6] == [50000.0, 50000.0, 50000.0, 50000.0, 0.1]
    ticker = ex.fetch_ticker("BTC/USDT")
    assert (ticker["last"], ticker["ask"], ticker["baseVolume"]) == (50000.0, 50000.0, 0.1)
    tickers = ex.fetch_tickers()
    assert {"BTC/USDT", "ETH/USDT", "BTC/USD", "ETH/USD"} <= set(tickers)
    with pytest.raises(ccxt.BadSymbol):
        ex.fetch_order_book("DOGE/USDT")
