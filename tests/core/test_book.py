"""One book interface, two implementations: the heap-indexed BookSide and the NaiveBookSide give
the same trades and books, both equal to the plainly written reference matching."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from dpg.core.engine import Engine
from dpg.core.matching import BookSide
from dpg.core.public_replay import replay
from tests.core import golden
from tests.core.naive_book import NaiveBookSide
from tests.core.test_properties import order_log, reference_match

BOOKS = [BookSide, NaiveBookSide]


@pytest.mark.parametrize("book_side", BOOKS, ids=["heap", "naive"])
def test_both_books_match_like_the_reference_model(book_side: Any) -> None:
    @settings(max_examples=150, deadline=None)
    @given(order_log())
    def check(rows: list[dict[str, str]]) -> None:
        result = replay(rows, Engine(book_side))
        want_trades, want_book = reference_match(rows)
        assert [(t.taker_id, t.maker_id, t.price, t.qty) for t in result.trades] == want_trades
        assert [(r.id, r.side, r.price, r.remaining) for r in result.book()] == want_book

    check()


def test_both_books_give_the_same_tape_on_a_seeded_workload() -> None:
    rows = list(golden.replay_rows(golden.REPLAY_SEEDS[0], 20_000))
    heap, naive = replay(rows, Engine(BookSide)), replay(rows, Engine(NaiveBookSide))
    assert heap.trades == naive.trades and len(heap.trades) > 5_000
    assert heap.book() == naive.book()
