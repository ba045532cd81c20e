"""A naive reference order book: obviously right, slow on purpose.

Lists re-sorted on every insert, linear scans, FOK by trial on a deep copy.
Covers limit GTC/IOC/FOK, post-only, market by quantity or quote, cancels,
self-trade prevention and the price-impact bound. Produces a trace of
("fill", maker, taker, price, qty) and ("done", id, status, reason) tuples to
compare with the real book's events.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from fractions import Fraction


@dataclass
class RefOrder:
    id: int
    account: int
    is_bid: bool
    price: int
    remaining: int
    arrival: int


class ReferenceBook:
    def __init__(self, max_impact: Fraction | None, min_impact: Fraction | None) -> None:
        self.bids: list[RefOrder] = []
        self.asks: list[RefOrder] = []
        self.max_impact, self.min_impact = max_impact, min_impact
        self.arrivals = 0

    def _sort(self) -> None:
        self.bids.sort(key=lambda o: (-o.price, o.arrival))
        self.asks.sort(key=lambda o: (o.price, o.arrival))

    def resting(self) -> list[tuple[int, int, int]]:
        return [(o.id, o.price, o.remaining) for o in self.bids + self.asks]

    def cancel(self, account: int, order_id: int) -> list[tuple]:
        for side in (self.bids, self.asks):
            for o in side:
                if o.id == order_id and o.account == account:
                    side.remove(o)
                    return [("done", order_id, "Cancelled", None)]
        return [("cancel_rejected", order_id)]

    def place(self, oid, account, is_bid, kind, price, qty, quote, tif, post_only, stp):
        opp = self.asks if is_bid else self.bids
        is_limit = kind == "Limit"

        def crosses(maker: RefOrder) -> bool:
            if not is_limit:
                return True
            return maker.price <= price if is_bid else maker.price >= price

        if post_only:
            if opp and crosses(opp[0]):
                return [("done", oid, "Expired", "PostOnlyTaker")]
            if tif == "GTC":
                self._rest(oid, account, is_bid, price, qty)
                return []
            reason = "FillOrKill" if tif == "FOK" else "ImmediateOrCancel"
            return [("done", oid, "Expired", reason)]
        if tif == "FOK" and quote is None:
            trial = copy.deepcopy(self)
            trace, left = trial._sweep(oid, account, is_bid, crosses, qty, None, stp)
            if left[0] != 0:
                return [("done", oid, "Expired", "FillOrKill")]
            self.__dict__.update(trial.__dict__)
            return trace + [("done", oid, "Filled", None)]
        remaining = qty if qty is not None else 10**18
        trace, (left, stopped, executed) = self._sweep(
            oid, account, is_bid, crosses, remaining, quote, stp
        )
        if left == 0:
            return trace + [("done", oid, "Filled", None)]
        if stopped == "stp":
            return trace + [("done", oid, "Expired", "SelfTradePrevention")]
        if stopped == "impact":
            return trace + [("done", oid, "Expired", "PriceImpact")]
        if stopped == "budget" and executed:
            return trace + [("done", oid, "Filled", None)]
        if is_limit and tif == "GTC":
            self._rest(oid, account, is_bid, price, left)
            return trace
        return trace + [("done", oid, "Expired", "ImmediateOrCancel")]

    def _sweep(self, oid, account, is_bid, crosses, remaining, budget, stp):
        opp = self.asks if is_bid else self.bids
        bound = None  # the impact bound, from the best opposite price on arrival
        if opp:
            best = opp[0].price
            if is_bid and self.max_impact is not None:
                bound = best * self.max_impact
            if not is_bid and self.min_impact is not None:
                bound = best * self.min_impact
        trace: list[tuple] = []
        executed = 0
        stopped = None
        while remaining and opp:
            maker = opp[0]
            if not crosses(maker):
                break
            if bound is not None and (maker.price > bound if is_bid else maker.price < bound):
                stopped = "impact"
                break
            if maker.account == account and stp != "Allow":
                if stp in ("RejectMaker", "RejectBoth"):
                    opp.pop(0)
                    trace.append(("done", maker.id, "Cancelled", "SelfTradePrevention"))
                if stp in ("RejectTaker", "RejectBoth"):
                    stopped = "stp"
                    break
                continue
            qty = min(maker.remaining, remaining)
            if budget is not None:
                if budget // maker.price == 0:
                    stopped = "budget"
                    break
                qty = min(qty, budget // maker.price)
                budget -= qty * maker.price
            maker.remaining -= qty
            remaining -= qty
            executed += qty
            trace.append(("fill", maker.id, oid, maker.price, qty))
            if maker.remaining == 0:
                opp.pop(0)
                trace.append(("done", maker.id, "Filled", None))
        return trace, (remaining, stopped, executed)

    def _rest(self, oid, account, is_bid, price, qty) -> None:
        self.arrivals += 1
        order = RefOrder(oid, account, is_bid, price, qty, self.arrivals)
        (self.bids if is_bid else self.asks).append(order)
        self._sort()
