"""An epoch's recorded balances stream from por_balances into the packed tree's arrays exactly."""

from __future__ import annotations

import random

import psycopg

from dpg.por import packed
from dpg.por import tree as por
from dpg.por.publish import read_balances

SECRET = bytes(range(32))


def test_balances_stream_into_arrays_and_the_tree_is_the_reference(pg_url: str) -> None:
    rng = random.Random(11)
    usdt = {a: rng.choice([1, rng.randrange(1, 10**18), (1 << 128) - 1, 1 << 64, (1 << 64) - 1])
            for a in rng.sample(range(1, 1 << 62), 30_000)}  # more than one COPY block
    with psycopg.connect(pg_url) as conn:
        for epoch in (100, 200):
            conn.execute("INSERT INTO por_epochs (epoch, seq, ts) VALUES (%s, 1, %s)", (epoch, epoch))
        with conn.cursor() as cur, cur.copy("COPY por_balances (epoch, asset, account, balance) FROM STDIN") as cp:
            for a, b in usdt.items():
                cp.write_row((100, "USDT", a, b))
            for a in range(1, 50):  # another asset, another epoch: not read
                cp.write_row((100, "BTC", a, 7))
                cp.write_row((200, "USDT", a, 9))
        conn.commit()
        got = read_balances(conn, 100, "USDT")
        assert read_balances(conn, 100, "ETH").accounts.size == 0
    want = sorted(usdt.items())
    assert got.accounts.tolist() == [a for a, _ in want]
    assert [(h << 64) | lo for h, lo in zip(got.hi.tolist(), got.lo.tolist(), strict=True)] == [b for _, b in want]
    params = por.Params(31337, "0x" + "ab" * 20, 100, "USDT")
    ref = por.build(params, [(str(a), b) for a, b in want], SECRET)
    assert packed.build(params, got, SECRET, workers=1).root == ref.root
