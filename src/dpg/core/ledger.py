"""The ledger: every account's balances (available and locked per asset) and the only code that
moves them outside settlement, with the fee and insurance accounts and the conservation check.

An account's balances are one integer vector ``[available_0, locked_0, available_1, locked_1, ...]``
indexed by asset; settlement (core/spot.py) moves a trade's amounts in those vectors directly (the
fees to FEE_ACCOUNT, less the INSURANCE_SHARE_PCT share to INSURANCE_ACCOUNT), the rest goes
through the methods here. An account exists once opened and has its vector from then
on; the system accounts (fees, insurance) always have theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dpg.core import events as E
from dpg.core.bigint import wrap
from dpg.core.events import Cause, Event
from dpg.core.model import SYSTEM_ACCOUNTS

_new = E.new
_Balance = E.Balance
BAL = E.BALANCE
C_LOCK = Cause.LOCK.value
C_UNLOCK = Cause.UNLOCK.value


class Ledger:
    """Balances of every open account, and the totals that entered and left per asset."""

    __slots__ = ("accounts_required", "balances", "credits", "debits", "zero")

    def __init__(self) -> None:
        self.balances: dict[int, list[int]] = {acct: [] for acct in SYSTEM_ACCOUNTS}
        self.credits: list[int] = []  # per asset: total that entered
        self.debits: list[int] = []  # per asset: total that left
        self.zero: list[int] = []  # the vector of a new account
        # set by RequireAccounts (the genesis of every journal since); before it, in an older journal,
        # a credit, a transfer or an order opened its account by itself, and replays so
        self.accounts_required = False

    # ------------------------------------------------------------------ accounts and assets

    def add_asset(self) -> None:
        """A new asset: every vector grows by (available, locked) = (0, 0)."""
        self.credits.append(0)
        self.debits.append(0)
        self.zero = [0] * (2 * len(self.credits))
        for vec in self.balances.values():
            vec.extend((0, 0))

    def open(self, account: int) -> bool:
        """Open ``account``; False if it already was."""
        if account in self.balances:
            return False
        self.balances[account] = self.zero.copy()
        return True

    def has(self, account: int) -> bool:
        return account in self.balances

    def account(self, account: int) -> list[int] | None:
        """The balance vector of an open account (None: unknown). Before RequireAccounts (an older
        journal replaying) an unknown account is opened, as it was when that journal was written."""
        vec = self.balances.get(account)
        if vec is None and not self.accounts_required:
            vec = self.balances[account] = self.zero.copy()
        return vec

    def balance(self, account: int, asset: int) -> tuple[int, int]:
        """(available, locked) in base units."""
        vec = self.balances.get(account)
        return (vec[2 * asset], vec[2 * asset + 1]) if vec else (0, 0)

    # ------------------------------------------------------------------ movements

    def lock(self, account: int, vec: list[int], asset: int, amount: int, ev: list[Event]) -> None:
        """Available -> locked (an order's or a withdrawal's hold)."""
        i = 2 * asset
        vec[i] -= amount
        vec[i + 1] += amount
        ev.append(_new(_Balance, (BAL, account, asset, -amount, amount, C_LOCK)))

    def unlock(self, account: int, asset: int, amount: int, ev: list[Event]) -> None:
        """Locked -> available (a hold released)."""
        vec = self.balances[account]
        i = 2 * asset
        vec[i] += amount
        vec[i + 1] -= amount
        ev.append(_new(_Balance, (BAL, account, asset, amount, -amount, C_UNLOCK)))

    def relock(self, account: int, vec: list[int], asset: int, delta: int, ev: list[Event]) -> None:
        """Change a hold by ``delta`` (an amended order): a lock when it grows, an unlock when it shrinks."""
        i = 2 * asset
        vec[i] -= delta
        vec[i + 1] += delta
        if delta:
            ev.append(_new(_Balance, (BAL, account, asset, -delta, delta, C_LOCK if delta > 0 else C_UNLOCK)))

    def credit(self, account: int, vec: list[int], asset: int, amount: int) -> Event:
        """Money entering the exchange."""
        vec[2 * asset] += amount
        self.credits[asset] += amount
        return _new(_Balance, (BAL, account, asset, amount, 0, Cause.CREDIT.value))

    def debit_locked(self, account: int, asset: int, amount: int) -> Event:
        """Locked money leaving the exchange (a completed withdrawal)."""
        self.balances[account][2 * asset + 1] -= amount
        self.debits[asset] += amount
        return _new(_Balance, (BAL, account, asset, 0, -amount, Cause.WITHDRAWAL.value))

    def transfer(self, src: int, svec: list[int], dst: int, dvec: list[int], asset: int, amount: int) -> list[Event]:
        i = 2 * asset
        svec[i] -= amount
        dvec[i] += amount
        t = Cause.TRANSFER.value
        return [_new(_Balance, (BAL, src, asset, -amount, 0, t)), _new(_Balance, (BAL, dst, asset, amount, 0, t))]

    # ------------------------------------------------------------------ checks and the state hash

    def totals(self) -> list[int]:
        """Per asset: the sum of every account's available + locked (fees and insurance included)."""
        out = [0] * len(self.credits)
        for vec in self.balances.values():
            for a in range(len(out)):
                out[a] += vec[2 * a] + vec[2 * a + 1]
        return out

    def conservation_errors(self, symbols: list[str], holds: Iterable[tuple[int, int, int]],
                            outside: dict[int, int] | None = None,
                            negative_ok: Callable[[int, int], bool] | None = None) -> list[str]:
        """Empty when, per asset, balances + fees + insurance + ``outside`` (perpetuals: isolated
        margins less the positions' signed open cost) == credits - debits, every locked balance
        equals its ``holds`` (account, asset, amount) exactly, and no balance is negative (an
        available balance may be where ``negative_ok(account, asset)``: a cross perpetual account
        whose equity covers it)."""
        errs: list[str] = []
        outside = outside or {}
        for a, total in enumerate(self.totals()):
            net = self.credits[a] - self.debits[a]
            if total + outside.get(a, 0) != net:
                errs.append(f"{symbols[a]}: balances {total} + margins - open cost {outside.get(a, 0)} "
                            f"!= net credits {net}")
        locked: dict[tuple[int, int], int] = {}
        for account, a, amount in holds:
            locked[(account, a)] = locked.get((account, a), 0) + amount
        for acct, vec in self.balances.items():
            for a in range(len(self.credits)):
                if (vec[2 * a] < 0 and not (negative_ok and negative_ok(acct, a))) or vec[2 * a + 1] < 0:
                    errs.append(f"account {acct} {symbols[a]}: negative balance {vec[2 * a : 2 * a + 2]}")
                want = locked.get((acct, a), 0)
                if vec[2 * a + 1] != want:
                    errs.append(f"account {acct} {symbols[a]}: locked {vec[2 * a + 1]} != orders {want}")
        return errs

    def canonical(self) -> list[Any]:
        """[balances, credits, debits] for the state hash: every open account ascending."""
        return [
            [[acct, [wrap(v) for v in vec]] for acct, vec in sorted(self.balances.items())],
            [wrap(v) for v in self.credits],
            [wrap(v) for v in self.debits],
        ]

    def restore(self, assets: int, balances: list[Any], credits: list[int], debits: list[int],
                accounts_required: bool) -> None:
        self.zero = [0] * (2 * assets)
        for acct in list(self.balances):
            self.balances[acct] = self.zero.copy()
        for acct, vec in balances:
            self.balances[acct] = list(vec)
        self.credits = list(credits)
        self.debits = list(debits)
        self.accounts_required = bool(accounts_required)
