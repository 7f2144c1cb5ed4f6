"""``dpg bench por``: build one asset's proof-of-reserves tree and every account's proof."""

from __future__ import annotations

import random
import resource
import time
from typing import Any

from dpg.por import tree as por


def run(accounts: int, seed: int = 5) -> dict[str, Any]:
    rng = random.Random(seed)
    balances = [(str(i), rng.randrange(1, 10**12)) for i in range(1, accounts + 1)]
    params = por.Params(31337, "0x" + "11" * 20, 20261125, "USDT")
    t0 = time.perf_counter()
    tree = por.build(params, balances, rng.randbytes(32))
    built = time.perf_counter() - t0
    t1 = time.perf_counter()
    for account, _ in balances:
        por.proof(tree, account)
    proved = time.perf_counter() - t1
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"bench": "por", "accounts": accounts, "depth": tree.depth, "build_s": round(built, 2),
            "proofs_s": round(proved, 2), "seconds": round(built + proved, 2), "peak_mb": round(peak_kb / 1024)}
