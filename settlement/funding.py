"""Funding of perpetuals (pure, no Django): the hourly rate from the premium, and the
zero-sum split of one interval's payments.

Rate = clamp(avgPremium + clamp(interest - avgPremium, -0.05%/8, +0.05%/8), lower, upper),
interest = 0.01%/8 per hour (SPEC.md). A payment is net quantity x mark x rate, paid by
longs to shorts when the rate is positive. Payers round up and receivers round down to
the quote asset's decimals; the residual (never negative) goes to the insurance fund.
"""

from collections.abc import Hashable, Mapping
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

INTEREST = Decimal("0.0001") / 8
DAMPER = Decimal("0.0005") / 8
RATE_QUANTUM = Decimal("1e-12")
BPS = Decimal("0.0001")


def clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(high, value))


def funding_rate(avg_premium: Decimal, lower_bps: Decimal, upper_bps: Decimal) -> Decimal:
    """The interval's rate (a fraction: 0.0001 = 1 bp), bounded by the market's bps."""
    raw = avg_premium + clamp(INTEREST - avg_premium, -DAMPER, DAMPER)
    return clamp(raw, lower_bps * BPS, upper_bps * BPS).quantize(RATE_QUANTUM, ROUND_HALF_EVEN)


def payments(
    positions: Mapping[Hashable, Decimal], mark: Decimal, rate: Decimal, decimals: int
) -> tuple[dict[Hashable, Decimal], Decimal]:
    """Each position's signed payment (+ received, - paid) and the residual for the
    insurance fund, so that Σ payments + residual = 0 exactly."""
    quantum = Decimal(1).scaleb(-decimals)
    out: dict[Hashable, Decimal] = {}
    for key, quantity in positions.items():
        exact = -quantity * mark * rate
        # toward minus infinity: a receiver gets less, a payer pays more
        amount = exact.quantize(quantum, rounding=ROUND_FLOOR)
        if amount:
            out[key] = amount
    return out, -sum(out.values(), Decimal(0))
