"""Borrow/lend pool math: utilization, the kinked rate curve, hourly interest, throttle.

Pure module: standard library only (no Django, nothing from the project), every
quantity is a ``Decimal``, never a float.  The numbers below are the SPEC.md defaults;
in the running exchange they are settings stored per pool and passed in as
``PoolParams``.

Quantization rules (the whole module follows them):

* Utilization and rates are kept to ``RATE_PLACES`` (18) decimal places.
  Utilization and the lend rate are rounded DOWN (towards zero) so that the lenders'
  side can never be promised more than the borrowers pay; the borrow rate is rounded
  ROUND_HALF_EVEN.  Intermediate results are computed in ``RATE_CONTEXT``
  (40 significant digits, ROUND_HALF_EVEN) before that final quantization.
* Interest amounts are rounded to the asset's ``decimals``: borrowers UP, lenders DOWN
  (SPEC.md "Borrowers round up, lenders round down, the residual to fees").  Interest is
  computed with exact integer arithmetic (``Decimal.as_integer_ratio``), so the rounding
  direction is decided on the exact value, not on an already rounded intermediate.
* Year = 365 days = 8760 hours: one hour of interest is ``amount x APR / 8760``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_UP,
    Context,
    Decimal,
    localcontext,
)
from typing import Generic, TypeVar

__all__ = [
    "DEFAULT_POOL_PARAMS",
    "HOURS_PER_YEAR",
    "MAJOR_POOL",
    "RATE_CONTEXT",
    "RATE_PLACES",
    "SECONDS_PER_HOUR",
    "SECONDS_PER_YEAR",
    "STABLECOIN_POOL",
    "HourlyInterest",
    "PoolParams",
    "PoolRates",
    "ThrottleCheck",
    "borrow_rate",
    "borrower_interest",
    "check_throttle",
    "entry_fee",
    "interest_for_period",
    "lend_rate",
    "lender_interest",
    "max_lend_redemption",
    "max_new_borrow",
    "pool_rates",
    "seconds_to_next_hour",
    "split_hourly_interest",
    "utilization",
    "utilization_ceiling",
]

RATE_PLACES = 18
RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)
RATE_CONTEXT = Context(prec=40, rounding=ROUND_HALF_EVEN)
HOURS_PER_YEAR = 8760
SECONDS_PER_HOUR = 3600
SECONDS_PER_YEAR = HOURS_PER_YEAR * SECONDS_PER_HOUR  # 31,536,000 (365 days)

_ZERO = Decimal(0)
_ONE = Decimal(1)

K = TypeVar("K", bound=Hashable)


def _rate(value: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Quantize a rate/utilization to RATE_PLACES decimal places."""
    return value.quantize(RATE_QUANTUM, rounding=rounding, context=RATE_CONTEXT)


@dataclass(frozen=True, slots=True)
class PoolParams:
    """Parameters of one borrow/lend pool (BorrowLendMarket in the OpenAPI contract).

    All fractions are plain decimals (0.08 = 8 %).

    * ``r_min``, ``r_opt``, ``r_max``: borrow APR at U = 0, at U = ``optimal_utilization``
      and at U = 1 (SPEC.md "Borrow and lend").
    * ``optimal_utilization`` (Uopt): the kink of the curve, 0 < Uopt < 1.
    * ``max_utilization``: no operation may take U past it, except liquidations (98 %).
    * ``throttle_utilization_threshold``: at U >= this (90 %), new borrows and lend
      redemptions may only raise U by ``throttle_update_fraction`` per hour.
    * ``throttle_update_fraction``: that per-hour budget, in absolute utilization points.
      SPEC.md gives no number; the default 0.02 (two utilization points per hour) lets U
      climb from the 90 % threshold to the 98 % ceiling in no less than four hours.
    * ``fee``: the exchange's share of the borrowers' interest (10 %), paid to ``fees``.
    """

    r_min: Decimal
    r_opt: Decimal
    r_max: Decimal
    optimal_utilization: Decimal
    max_utilization: Decimal = Decimal("0.98")
    throttle_utilization_threshold: Decimal = Decimal("0.90")
    throttle_update_fraction: Decimal = Decimal("0.02")
    fee: Decimal = Decimal("0.10")

    def __post_init__(self) -> None:
        if not (_ZERO <= self.r_min <= self.r_opt <= self.r_max):
            raise ValueError("rates must satisfy 0 <= r_min <= r_opt <= r_max")
        if self.r_opt <= _ZERO:
            raise ValueError("r_opt must be positive (the curve above the kink is r_opt x ...)")
        if not (_ZERO < self.optimal_utilization < _ONE):
            raise ValueError("optimal_utilization must be in (0, 1)")
        if not (_ZERO <= self.throttle_utilization_threshold <= self.max_utilization <= _ONE):
            raise ValueError("need 0 <= throttle threshold <= max_utilization <= 1")
        if self.throttle_update_fraction < _ZERO:
            raise ValueError("throttle_update_fraction must be >= 0")
        if not (_ZERO <= self.fee < _ONE):
            raise ValueError("fee must be in [0, 1)")


#: USDC and USDT: rMin 0, rOpt 8 %, Uopt 80 %, rMax 150 % (SPEC.md defaults).
STABLECOIN_POOL = PoolParams(
    r_min=Decimal(0),
    r_opt=Decimal("0.08"),
    r_max=Decimal("1.50"),
    optimal_utilization=Decimal("0.80"),
)
#: SOL, BTC, ETH: rMin 0, rOpt 5 %, Uopt 70 %, rMax 200 % (SPEC.md defaults).
MAJOR_POOL = PoolParams(
    r_min=Decimal(0),
    r_opt=Decimal("0.05"),
    r_max=Decimal("2.00"),
    optimal_utilization=Decimal("0.70"),
)
DEFAULT_POOL_PARAMS: Mapping[str, PoolParams] = {
    "USDC": STABLECOIN_POOL,
    "USDT": STABLECOIN_POOL,
    "SOL": MAJOR_POOL,
    "BTC": MAJOR_POOL,
    "ETH": MAJOR_POOL,
}


def utilization(borrowed: Decimal, lent: Decimal) -> Decimal:
    """Utilization U = borrowed / lent (SPEC.md), to 18 places rounded down.

    U is 0 when nothing is borrowed, and capped at 1: a pool with borrows but nothing
    (or less) lent counts as fully utilized rather than dividing by zero or exceeding 1.
    """
    if borrowed < _ZERO or lent < _ZERO:
        raise ValueError("borrowed and lent must be >= 0")
    if borrowed == _ZERO:
        return _rate(_ZERO)
    if borrowed >= lent:
        return _rate(_ONE)
    return _rate(RATE_CONTEXT.divide(borrowed, lent), ROUND_DOWN)


def _clamp_u(u: Decimal) -> Decimal:
    if u < _ZERO:
        return _ZERO
    if u > _ONE:
        return _ONE
    return u


def borrow_rate(u: Decimal, params: PoolParams) -> Decimal:
    """Borrow APR at utilization ``u`` (SPEC.md "Borrow and lend").

    ``r(U) = rMin + (rOpt - rMin) x U / Uopt`` for ``U <= Uopt``, and
    ``rOpt x (rMax / rOpt) ^ ((U - Uopt) / (1 - Uopt))`` above: it rises exponentially.

    Both branches give rOpt at U = Uopt, so the curve is continuous.  The fractional
    power is Decimal's own ``**`` (exp/ln of the decimal context, 40 digits), no float.
    ``u`` is clamped to [0, 1]; the result is quantized to 18 places, ROUND_HALF_EVEN.
    """
    u = _clamp_u(u)
    uopt = params.optimal_utilization
    with localcontext(RATE_CONTEXT):
        if u <= uopt:
            r = params.r_min + (params.r_opt - params.r_min) * u / uopt
        else:
            exponent = (u - uopt) / (_ONE - uopt)
            r = params.r_opt * (params.r_max / params.r_opt) ** exponent
    return _rate(r)


def lend_rate(u: Decimal, params: PoolParams) -> Decimal:
    """Lend APR = borrow rate x U x (1 - fee) (SPEC.md), 18 places rounded DOWN.

    Since U <= 1 and fee >= 0 it never exceeds the borrow rate.
    """
    u = _clamp_u(u)
    with localcontext(RATE_CONTEXT):
        r = borrow_rate(u, params) * u * (_ONE - params.fee)
    return _rate(r, ROUND_DOWN)


@dataclass(frozen=True, slots=True)
class PoolRates:
    """Utilization and both APRs of a pool at one moment."""

    utilization: Decimal
    borrow_rate: Decimal
    lend_rate: Decimal


def pool_rates(borrowed: Decimal, lent: Decimal, params: PoolParams) -> PoolRates:
    """Utilization, borrow APR and lend APR of a pool holding these totals."""
    u = utilization(borrowed, lent)
    return PoolRates(
        utilization=u,
        borrow_rate=borrow_rate(u, params),
        lend_rate=lend_rate(u, params),
    )


# --------------------------------------------------------------------------- interest


def _ratio(value: Decimal | int) -> tuple[int, int]:
    if isinstance(value, int):
        return value, 1
    return value.as_integer_ratio()


def interest_for_period(
    amount: Decimal,
    apr: Decimal,
    decimals: int,
    seconds: Decimal | int,
    rounding: str,
) -> Decimal:
    """Simple interest ``amount x APR x seconds / (365 x 86400)``, rounded to ``decimals``.

    For one hour (3600 s) this is SPEC.md's ``amount x APR / 8760``.  The division is
    done on exact integers, so ``ROUND_UP`` really is the ceiling and ``ROUND_DOWN`` the
    floor of the exact value (amount, APR and seconds must be >= 0).  Only ``ROUND_UP``,
    ``ROUND_DOWN`` and ``ROUND_HALF_EVEN`` are accepted.
    """
    if amount < 0 or apr < 0 or seconds < 0:
        raise ValueError("amount, apr and seconds must be >= 0")
    if decimals < 0:
        raise ValueError("decimals must be >= 0")
    na, da = _ratio(amount)
    nr, dr = _ratio(apr)
    ns, ds = _ratio(seconds)
    num = na * nr * ns * 10**decimals
    den = da * dr * ds * SECONDS_PER_YEAR
    q, r = divmod(num, den)
    if rounding == ROUND_UP:
        q += 1 if r else 0
    elif rounding == ROUND_HALF_EVEN:
        twice = 2 * r
        if twice > den or (twice == den and q % 2 == 1):
            q += 1
    elif rounding != ROUND_DOWN:
        raise ValueError(f"unsupported rounding {rounding!r}")
    return Decimal(f"{q}E-{decimals}")


def borrower_interest(amount: Decimal, apr: Decimal, decimals: int) -> Decimal:
    """One hour of interest charged to a borrower of ``amount``: ``amount x APR / 8760``
    rounded UP to the asset's ``decimals`` (SPEC.md: borrowers round up)."""
    return interest_for_period(amount, apr, decimals, SECONDS_PER_HOUR, ROUND_UP)


def lender_interest(amount: Decimal, apr: Decimal, decimals: int) -> Decimal:
    """One hour of interest credited to a lender of ``amount``: ``amount x APR / 8760``
    rounded DOWN to the asset's ``decimals`` (SPEC.md: lenders round down)."""
    return interest_for_period(amount, apr, decimals, SECONDS_PER_HOUR, ROUND_DOWN)


@dataclass(frozen=True, slots=True)
class HourlyInterest(Generic[K]):
    """One hour of a pool's interest: what each borrower pays, what each lender gets,
    and the exchange's fee.  Invariant: ``sum(borrower_charges) == sum(lender_credits)
    + fee`` exactly, with ``fee >= 0`` (the rounding residual is part of the fee)."""

    rates: PoolRates
    borrower_charges: dict[K, Decimal]
    lender_credits: dict[K, Decimal]
    fee: Decimal


def split_hourly_interest(
    borrows: Mapping[K, Decimal],
    lends: Mapping[K, Decimal],
    params: PoolParams,
    decimals: int,
    rates: PoolRates | None = None,
) -> HourlyInterest[K]:
    """Split one hour of a pool's interest (SPEC.md "Interest every hour on the hour").

    ``borrows`` and ``lends`` map a position key (e.g. account id) to the borrowed / lent
    quantity (magnitudes, >= 0).  Unless ``rates`` is given, the rates come from these
    totals: U = sum(borrows) / sum(lends).  Each borrower is charged
    ``borrower_interest`` (rounded up), each lender credited ``lender_interest``
    (rounded down), and ``fee = sum(charges) - sum(credits)``: the protocol fee plus the
    rounding residual, which goes to the ``fees`` account.

    With rates derived from the same positions the fee can't be negative: the lenders'
    exact total is sum(lent) x rB x U x (1 - fee) / 8760 <= sum(borrowed) x rB / 8760
    (U is rounded down), lenders round down and borrowers round up.  If rates supplied
    by the caller would make it negative, ``ValueError`` is raised instead of minting.
    """
    if rates is None:
        rates = pool_rates(sum(borrows.values(), _ZERO), sum(lends.values(), _ZERO), params)
    charges = {k: borrower_interest(v, rates.borrow_rate, decimals) for k, v in borrows.items()}
    credits = {k: lender_interest(v, rates.lend_rate, decimals) for k, v in lends.items()}
    with localcontext(Context(prec=100)):
        fee = sum(charges.values(), _ZERO) - sum(credits.values(), _ZERO)
    if fee < _ZERO:
        raise ValueError("lender credits exceed borrower charges: inconsistent rates")
    return HourlyInterest(rates=rates, borrower_charges=charges, lender_credits=credits, fee=fee)


def seconds_to_next_hour(at: datetime) -> Decimal:
    """Seconds from ``at`` to the next hour boundary strictly after it (UTC hours).

    A borrow opened exactly on the hour (after that hour's accrual) is covered until the
    next one, i.e. 3600 s.  Naive datetimes are taken as UTC.  Exact to the microsecond.
    """
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    boundary = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    delta = boundary - at
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Decimal(f"{micros}E-6")


def entry_fee(amount: Decimal, apr: Decimal, decimals: int, borrowed_at: datetime) -> Decimal:
    """Entry fee of a new borrow (SPEC.md: "Opening a borrow charges the interest to the
    next hour", payment type EntryFee): ``amount x APR x seconds_to_next_hour / 31,536,000``
    rounded UP to ``decimals`` like every borrower charge.  Borrowing at 00:50 charges
    10 minutes of interest."""
    return interest_for_period(amount, apr, decimals, seconds_to_next_hour(borrowed_at), ROUND_UP)


# --------------------------------------------------------------------------- throttle


@dataclass(frozen=True, slots=True)
class ThrottleCheck:
    """Outcome of ``check_throttle``.

    ``reason`` is None when allowed, else ``"MaxUtilization"`` or ``"Throttled"``.
    ``budget_consumed`` is the part of this hour's ``throttle_update_fraction`` the
    operation uses (0 when refused); add it to the hour's running total.
    """

    allowed: bool
    reason: str | None
    budget_consumed: Decimal


def utilization_ceiling(
    u_before: Decimal, params: PoolParams, budget_used: Decimal = _ZERO
) -> Decimal:
    """Highest utilization a non-liquidation borrow / lend redemption may reach from
    ``u_before`` this hour (SPEC.md "Throttle").

    Below the threshold U may rise freely up to it; at or above the threshold only by the
    remaining hourly budget ``throttle_update_fraction - budget_used``; never past
    ``max_utilization``.  So: ``min(maxU, max(U0, threshold) + remaining)``; when U0 is
    already at or past maxU the ceiling is U0 itself (nothing may raise U).
    """
    if u_before >= params.max_utilization:
        return u_before
    remaining = max(_ZERO, params.throttle_update_fraction - budget_used)
    return min(
        params.max_utilization,
        max(u_before, params.throttle_utilization_threshold) + remaining,
    )


def check_throttle(
    u_before: Decimal,
    u_after: Decimal,
    params: PoolParams,
    *,
    budget_used: Decimal = _ZERO,
    is_liquidation: bool = False,
) -> ThrottleCheck:
    """May a new borrow or lend redemption move utilization from ``u_before`` to
    ``u_after``?  (SPEC.md: "at U >= throttleUtilizationThreshold (90%) new borrows and
    lend redemptions may only raise U by throttleUpdateFraction per hour; no operation
    may take U past maxUtilization (98%) except liquidations.")

    * Liquidations are exempt from both rules and consume no budget.
    * An operation that doesn't raise U is always allowed.
    * ``u_after > max_utilization`` -> refused, ``"MaxUtilization"``.
    * The part of the rise that lies at/above the threshold,
      ``u_after - max(u_before, threshold)``, must fit in the hour's remaining budget
      ``throttle_update_fraction - budget_used``, else ``"Throttled"``.  A rise that
      stays below the threshold uses no budget and is never throttled.
    """
    if is_liquidation or u_after <= u_before:
        return ThrottleCheck(True, None, _ZERO)
    if u_after > params.max_utilization:
        return ThrottleCheck(False, "MaxUtilization", _ZERO)
    consumed = max(_ZERO, u_after - max(u_before, params.throttle_utilization_threshold))
    if consumed > _ZERO and budget_used + consumed > params.throttle_update_fraction:
        return ThrottleCheck(False, "Throttled", _ZERO)
    return ThrottleCheck(True, None, consumed)


def max_new_borrow(
    borrowed: Decimal,
    lent: Decimal,
    params: PoolParams,
    decimals: int,
    budget_used: Decimal = _ZERO,
) -> Decimal:
    """Largest new borrow the pool allows now (non-liquidation), rounded DOWN to
    ``decimals``: ``lent x ceiling - borrowed``, never negative."""
    ceiling = utilization_ceiling(utilization(borrowed, lent), params, budget_used)
    with localcontext(RATE_CONTEXT):
        room = lent * ceiling - borrowed
    return max(_ZERO, room).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)


def max_lend_redemption(
    borrowed: Decimal,
    lent: Decimal,
    params: PoolParams,
    decimals: int,
    budget_used: Decimal = _ZERO,
) -> Decimal:
    """Largest lend redemption the pool allows now (non-liquidation), rounded DOWN to
    ``decimals``: ``lent - borrowed / ceiling`` (all of it when nothing is borrowed)."""
    if borrowed == _ZERO:
        return lent
    ceiling = utilization_ceiling(utilization(borrowed, lent), params, budget_used)
    if ceiling == _ZERO:
        return _ZERO
    with localcontext(RATE_CONTEXT):
        # lent - borrowed / ceiling, with borrowed / ceiling rounded UP so that the
        # redemption never pushes U past the ceiling.
        need = RATE_CONTEXT.divide(borrowed, ceiling)
        need = need.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_UP)
        room = lent - need
    return max(_ZERO, room).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)
