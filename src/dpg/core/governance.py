"""The exchange's governed parameters in the engine: each market's fees and halted state, the
stakers' share of the fees, and whether governance (not the operator's hand) decides them.

Each change is a journaled command. One by the operator's hand carries no reference and is refused
once EnableGovernance has been applied; one carrying out a governance decision carries its
reference ("gov:CHAIN:CHANGE", from the executed on-chain operation) and is applied at most once,
whatever the watcher sends again after a restart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dpg.core import events as E
from dpg.core.commands import EnableGovernance, HaltMarket, PayStakers, SetFees, SetStakerShare
from dpg.core.errors import Reject
from dpg.core.events import Cause, Event
from dpg.core.model import FEE_ACCOUNT, GOV_REF, PPM, STAKERS_ACCOUNT, Market

if TYPE_CHECKING:
    from dpg.core.engine import Engine

MAX_REF = 200
_new = E.new


def _rej(code: Reject, reason: str) -> list[Event]:
    return E.rejected(code.value, reason)


class Governance:
    """``governed``: EnableGovernance was applied; ``staker_share_ppm``: the stakers' share."""

    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.governed = False
        self.staker_share_ppm = 0

    def refused(self, ref: object) -> list[Event] | None:
        """The refusal of a parameter change with reference ``ref``, or None when it may go ahead."""
        if not isinstance(ref, str) or len(ref) > MAX_REF:
            return _rej(Reject.INVALID_ORDER, f"a reference is a string of at most {MAX_REF} characters")
        if not ref:
            if self.governed:
                return _rej(Reject.GOVERNED, "governance decides this parameter: it changes only by a decision")
            return None
        if not ref.startswith(GOV_REF):
            return _rej(Reject.INVALID_ORDER, f"a decision's reference starts with {GOV_REF!r}")
        if ref in self.e.refs:
            return _rej(Reject.DUPLICATE_REFERENCE, f"decision {ref!r} was already applied")
        return None

    def applied(self, ref: str) -> None:
        """A change with reference ``ref`` (refused() let it through) was applied: a decision's is kept,
        so that it is never applied again."""
        if ref:
            self.e.refs.add(ref)

    def _market(self, symbol: object) -> Market | list[Event]:
        m = self.e.market_by_symbol.get(symbol) if isinstance(symbol, str) else None
        return _rej(Reject.UNKNOWN_MARKET, f"unknown market {symbol!r}") if m is None else m

    def _swap(self, m: Market, maker: int, taker: int, halted: bool, ref: str) -> list[Event]:
        """Put ``m`` with its new terms wherever the engine keeps it; the event that says so."""
        new = m.with_terms(maker, taker, halted)
        self.e.swap_market(new)
        self.applied(ref)
        return [_new(E.MarketChanged, (E.MARKET_CHANGED, m.index, maker, taker, halted, ref))]

    def on_set_fees(self, c: SetFees) -> list[Event]:
        r: Any = c  # the command as it came: each field is checked before it is trusted
        m = self._market(r.market)
        if isinstance(m, list):
            return m
        if not (type(r.maker_fee_ppm) is int and type(r.taker_fee_ppm) is int
                and 0 <= r.maker_fee_ppm < PPM and 0 <= r.taker_fee_ppm < PPM):
            return _rej(Reject.INVALID_MARKET, "fee rates must be integers within [0, 1e6) ppm")
        refused = self.refused(r.ref)
        if refused is not None:
            return refused
        return self._swap(m, r.maker_fee_ppm, r.taker_fee_ppm, m.halted, r.ref)

    def on_halt_market(self, c: HaltMarket) -> list[Event]:
        r: Any = c
        m = self._market(r.market)
        if isinstance(m, list):
            return m
        if type(r.halted) is not bool:
            return _rej(Reject.INVALID_MARKET, "halted is true or false")
        refused = self.refused(r.ref)
        if refused is not None:
            return refused
        return self._swap(m, m.maker_fee_ppm, m.taker_fee_ppm, r.halted, r.ref)

    def _params(self, ref: str) -> list[Event]:
        self.applied(ref)
        return [_new(E.ParamsChanged, (E.PARAMS_CHANGED, self.governed, self.staker_share_ppm, ref))]

    def on_set_staker_share(self, c: SetStakerShare) -> list[Event]:
        r: Any = c
        if type(r.share_ppm) is not int or not 0 <= r.share_ppm <= PPM:
            return _rej(Reject.INVALID_AMOUNT, "the stakers' share is an integer within [0, 1e6] ppm")
        refused = self.refused(r.ref)
        if refused is not None:
            return refused
        self.staker_share_ppm = r.share_ppm
        return self._params(r.ref)

    def on_enable_governance(self, _: EnableGovernance) -> list[Event]:
        if self.governed:
            return []  # already: nothing changes
        self.governed = True
        return self._params("")

    def on_pay_stakers(self, c: PayStakers) -> list[Event]:
        """Move the stakers' share of the fee account's available ``asset`` to their reserve."""
        r: Any = c
        e = self.e
        asset = e.asset_by_symbol.get(r.asset) if isinstance(r.asset, str) else None
        if asset is None:
            return _rej(Reject.UNKNOWN_ASSET, f"unknown asset {r.asset!r}")
        if not isinstance(r.ref, str) or not r.ref or len(r.ref) > MAX_REF:
            return _rej(Reject.INVALID_ORDER, f"a reward period's reference is 1-{MAX_REF} characters")
        if r.ref in e.refs:
            return _rej(Reject.DUPLICATE_REFERENCE, f"reward period {r.ref!r} was already paid")
        bal = e.ledger.balances
        i = 2 * asset.index
        amount = bal[FEE_ACCOUNT][i] * self.staker_share_ppm // PPM  # toward the exchange
        e.refs.add(r.ref)
        if not amount:
            return []
        e.ledger.open(STAKERS_ACCOUNT)
        bal[FEE_ACCOUNT][i] -= amount
        bal[STAKERS_ACCOUNT][i] += amount
        cause = Cause.STAKERS.value
        return [_new(E.Balance, (E.BALANCE, FEE_ACCOUNT, asset.index, -amount, 0, cause)),
                _new(E.Balance, (E.BALANCE, STAKERS_ACCOUNT, asset.index, amount, 0, cause))]

    def canonical(self) -> list[Any]:
        """[governed, stakers' share, the halted markets' indices] for the state hash."""
        return [self.governed, self.staker_share_ppm, [m.index for m in self.e.markets if m.halted]]

    def restore(self, fields: list[Any]) -> None:
        governed, share, halted = fields
        self.governed, self.staker_share_ppm = bool(governed), share
        for mi in halted:
            m = self.e.markets[mi]
            self.e.swap_market(m.with_terms(m.maker_fee_ppm, m.taker_fee_ppm, True))

    def is_default(self) -> bool:
        """Nothing governed has changed from a new engine's (its state then hashes as before)."""
        return not self.governed and not self.staker_share_ppm and not any(m.halted for m in self.e.markets)
