"""A process that runs the exchange under load until it is killed (by test_crash_recovery).

Usage: crash_child.py DATABASE_URL FIRST_K. Prints READY once open, then one line per reply:
``ACK <client id> <seq> <first event kind>``, written only after the command is durable.
"""

from __future__ import annotations

import sys
import threading
from functools import partial

from dpg.config import Settings
from dpg.core.commands import Credit, OpenAccount, PlaceOrder
from dpg.core.events import Event
from dpg.core.model import OrderType, Side
from dpg.system.node import Node

ACCOUNTS = 6


def main() -> None:
    url, first = sys.argv[1], int(sys.argv[2])
    settings = Settings.from_env({"DPG_SNAPSHOT_EVERY": "400", "DPG_BATCH_MAX": "64"})
    node = Node.open(url, settings, projections=False)
    out = sys.stdout
    lock = threading.Lock()
    window = threading.BoundedSemaphore(128)

    def ack(cid: str, seq: int, events: list[Event]) -> None:
        with lock:
            out.write(f"ACK {cid} {seq} {events[0][0]}\n")
            out.flush()
        window.release()

    for a in range(1, ACCOUNTS + 1):  # opening again changes nothing and refs make a repeated funding a no-op
        node.sequencer.submit_wait(OpenAccount(a))
        node.sequencer.submit_wait(Credit(a, "USDT", 10**13, f"fund-usdt-{a}"))
        node.sequencer.submit_wait(Credit(a, "BTC", 10**11, f"fund-btc-{a}"))
    out.write("READY\n")
    out.flush()
    k = first
    while True:
        window.acquire()
        side = Side.BUY if k % 2 else Side.SELL
        price = (2_000_000 + (k * 7919) % 21 - 10) * 10_000
        otype = OrderType.IOC if k % 9 == 0 else OrderType.LIMIT
        cid = f"k{k}"
        cmd = PlaceOrder(1 + k % ACCOUNTS, "BTC/USDT", side, otype, price, (1 + k % 7) * 10_000, client_id=cid)
        node.sequencer.submit(cmd, partial(ack, cid))
        k += 1


if __name__ == "__main__":
    main()
