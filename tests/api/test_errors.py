"""The error shape's last line of defence: an exception nothing else answered is a logged JSON 500,
never plain text."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dpg.api.errors import ApiError, CatchAll, api_error_handler


def app() -> FastAPI:
    a = FastAPI()
    a.add_exception_handler(ApiError, api_error_handler)
    a.add_middleware(CatchAll)

    @a.get("/boom")
    async def boom() -> None:
        raise ZeroDivisionError("a bug")

    @a.get("/refused")
    async def refused() -> None:
        raise ApiError(409, "TAKEN", "already there")

    return a


def test_an_unexpected_exception_is_a_logged_json_500(caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(app(), raise_server_exceptions=True)  # nothing escapes to the server
    with caplog.at_level(logging.ERROR, logger="dpg.api"):
        r = client.get("/boom?x=1")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "INTERNAL" and r.json()["reason"]
    assert "a bug" not in r.text  # no internals in the answer
    logged = [rec for rec in caplog.records if "event=internal_error" in rec.getMessage()]
    assert len(logged) == 1
    assert "method=GET path=/boom error=ZeroDivisionError" in logged[0].getMessage()
    assert logged[0].exc_info is not None  # the traceback is in the log


def test_handled_errors_keep_their_answer() -> None:
    r = TestClient(app()).get("/refused")
    assert (r.status_code, r.json()) == (409, {"code": "TAKEN", "reason": "already there"})
