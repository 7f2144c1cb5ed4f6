"""The one signed-request check: the timestamp and receive window must be whole numbers of ms
(text as sent by REST, integers as sent in JSON) before the key's signature is checked at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dpg.api import signing


class Recorder:
    """Stands in for Accounts: records what the signature check was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def verify_signature(self, *args: Any) -> int:
        self.calls.append(args)
        return 7


def check(ts: str | int, window: str | int | None) -> tuple[int, tuple[Any, ...]]:
    accounts = Recorder()
    user = asyncio.run(signing.verify(accounts, "k", "sig", b"payload", ts, window, "1.2.3.4", "read"))  # type: ignore[arg-type]
    return user, accounts.calls[0]


def test_whole_numbers_reach_the_signature_check() -> None:
    assert check("1700000000000", None) == (7, ("k", "sig", b"payload", 1700000000000, 5000, "1.2.3.4", "read"))
    assert check("1700000000000", "60000")[1][4] == 60000
    assert check(1700000000000, 2500)[1][3:5] == (1700000000000, 2500)  # JSON integers as they are


@pytest.mark.parametrize(("ts", "window", "field"), [
    ("", None, "timestamp"), ("17e11", None, "timestamp"), ("²", None, "timestamp"), ("1" * 17, None, "timestamp"),
    ("-1", None, "timestamp"), ("1700000000000", "", "recv_window"), ("1700000000000", "1000000", "recv_window"),
    ("1700000000000", "5.5", "recv_window"),
])
def test_malformed_times_are_refused_before_any_key_is_read(ts: str, window: str | None, field: str) -> None:
    accounts = Recorder()
    with pytest.raises(signing.MalformedSignature) as e:
        asyncio.run(signing.verify(accounts, "k", "sig", b"p", ts, window, "1.2.3.4", "read"))  # type: ignore[arg-type]
    assert e.value.field == field and not accounts.calls
