"""Binance's words for DPG's: error codes and messages, order statuses and types, self-trade
prevention modes, and the one exception every Binance route and socket answers with."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from dpg.api.errors import ApiError
from dpg.core.model import STP, OrderStatus, OrderType
from dpg.identity import AuthError

# DPG's rejection codes in Binance's words (HTTP status, code, message)
REJECTIONS: dict[str, tuple[int, int, str]] = {
    "MARKET_HALTED": (400, -2010, "Market is closed."),
    "PRICE_OFF_TICK": (400, -1013, "Filter failure: PRICE_FILTER"),
    "INVALID_PRICE": (400, -1013, "Filter failure: PRICE_FILTER"),
    "QUANTITY_OFF_LOT": (400, -1013, "Filter failure: LOT_SIZE"),
    "INVALID_QUANTITY": (400, -1013, "Filter failure: LOT_SIZE"),
    "BELOW_MIN_NOTIONAL": (400, -1013, "Filter failure: NOTIONAL"),
    "INVALID_AMOUNT": (400, -1100, "Illegal characters found in a parameter."),
    "INSUFFICIENT_FUNDS": (400, -2010, "Account has insufficient balance for requested action."),
    "POST_ONLY_WOULD_TAKE": (400, -2010, "Order would immediately match and take."),
    "STOP_WOULD_TRIGGER": (400, -2010, "Order would trigger immediately."),
    "FOK_NOT_FILLABLE": (400, -2010, "Order would not be filled completely."),
    "NO_LIQUIDITY": (400, -2010, "Market order cannot be filled: no liquidity."),
    "DUPLICATE_CLIENT_ORDER_ID": (400, -2010, "Duplicate order sent."),
    "UNKNOWN_MARKET": (400, -1121, "Invalid symbol."),
    "UNAVAILABLE": (503, -1001, "Internal error; unable to process your request. Please try again."),
    "ORDER_NOT_FOUND": (400, -2011, "Unknown order sent."),
}
KEY_REFUSED = (401, -2015, "Invalid API-key, IP, or permissions for action.")
AUTH: dict[str, tuple[int, int, str]] = {
    "KEY_UNKNOWN": KEY_REFUSED,
    "KEY_REVOKED": KEY_REFUSED,
    "IP_NOT_ALLOWED": KEY_REFUSED,
    "PERMISSION_DENIED": KEY_REFUSED,
    "STALE_TIMESTAMP": (400, -1021, "Timestamp for this request is outside of the recvWindow."),
    "REPLAYED": (400, -1021, "Timestamp for this request was already used."),
    "BAD_SIGNATURE": (400, -1022, "Signature for this request is not valid."),
    "INVALID_RECV_WINDOW": (400, -1131, "recvWindow must be less than 60000"),
}
# the refusals of the WebSocket API's read loop (dpg.api.ws.Dialect's codes)
WS_REFUSALS = {"INVALID_JSON": (400, -1000, "Invalid JSON: the request is not a JSON object."),
               "MESSAGE_TOO_LARGE": (400, -1104, "Too many parameters sent for this endpoint."),
               "RATE_LIMITED": (429, -1003, "Too many requests; current limit is exceeded.")}

STATUS = {OrderStatus.OPEN.value: "NEW", OrderStatus.PARTIALLY_FILLED.value: "PARTIALLY_FILLED",
          OrderStatus.FILLED.value: "FILLED", OrderStatus.CANCELED.value: "CANCELED",
          OrderStatus.EXPIRED.value: "EXPIRED", OrderStatus.REJECTED.value: "REJECTED"}
TYPE = {OrderType.LIMIT.value: ("LIMIT", "GTC"), OrderType.IOC.value: ("LIMIT", "IOC"),
        OrderType.FOK.value: ("LIMIT", "FOK"), OrderType.POST_ONLY.value: ("LIMIT_MAKER", "GTC"),
        OrderType.MARKET.value: ("MARKET", "GTC"), OrderType.STOP_LIMIT.value: ("STOP_LOSS_LIMIT", "GTC"),
        OrderType.TAKE_PROFIT_LIMIT.value: ("TAKE_PROFIT_LIMIT", "GTC")}
# Binance's (type, timeInForce) of a new order -> DPG's order type
KINDS = {("LIMIT", "GTC"): "limit", ("LIMIT", "IOC"): "ioc", ("LIMIT", "FOK"): "fok",
         ("LIMIT_MAKER", "GTC"): "post_only", ("MARKET", "GTC"): "market", ("MARKET", "IOC"): "market",
         ("STOP_LOSS_LIMIT", "GTC"): "stop_limit", ("TAKE_PROFIT_LIMIT", "GTC"): "take_profit_limit"}
ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]
STP_NAMES = {s.value: s.name for s in STP}  # Binance names DPG's modes as DPG does, upper-case
STP_OF = {**{s.name: s.name.lower() for s in STP}, "NONE": "expire_taker"}  # selfTradePreventionMode -> DPG's
MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
INVALID_SYMBOL = "Invalid symbol."
UNKNOWN_ORDER = "Unknown order sent."


class BinanceError(Exception):
    """A refusal in Binance's words: HTTP status (the WebSocket API's ``status``), code and message."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


async def binance_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BinanceError)
    return JSONResponse({"code": exc.code, "msg": exc.msg}, status_code=exc.status)


def rejected(e: ApiError) -> BinanceError:
    """A DPG refusal of an order or a cancellation in Binance's words."""
    status, code, msg = REJECTIONS.get(e.code, (400, -1013 if "FILTER" in e.code else -2010, e.reason))
    return BinanceError(status, code, msg)


def refused(e: AuthError) -> BinanceError:
    """A refused signature or key in Binance's words."""
    status, code, msg = AUTH.get(e.code, (400, -1022, e.reason))
    return BinanceError(status, code, msg)
