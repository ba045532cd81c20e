"""Index and mark price math: the simulated feed's random walk, premiums, the premium EMA and
the mark-price rule.

Pure module: standard library only, every price a ``Decimal`` (never a float, also not in
the random walk). Formulas follow SPEC.md "Funding (perps)":

* Premium sample = (mid - index) / index, mid = (best bid + best ask) / 2; no sample when a
  side of the book is empty.
* The premium EMA runs over 30 minutes of 5-second samples: alpha = 2 / (N + 1), N = 360.
  A market with no samples yet has an EMA of 0 (it is priced at its index until its book
  shows a premium).
* Mark = median(index x (1 + EMA premium), best bid, best ask); an empty side is dropped
  (the median of two values is their mean; with no book at all the mark is the fair price),
  then each update is capped at +-1% of the previous mark (Backpack's
  maxPriceUpdateMultiplier / minPriceUpdateMultiplier).
* The simulated index is a geometric random walk: each tick multiplies the price by
  exp(volatility x z - volatility^2 / 2), z a standard-normal draw built from integers of
  ``random.Random`` (Irwin-Hall: the sum of 12 uniforms minus 6), so the price never turns
  negative and a (seed, step) pair always gives the same move.
"""

import random
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

ZERO = Decimal(0)
ONE = Decimal(1)
TWO = Decimal(2)
# Stored prices: 12 decimal places; premiums and EMAs: 18 (the columns' scale).
PRICE_QUANTUM = Decimal("1e-12")
RATIO_QUANTUM = Decimal("1e-18")
# The smallest index the simulated walk may reach (a floor against rounding to zero).
MIN_PRICE = Decimal("1e-8")
# SPEC.md: premium sampled every 5 s, EMA over 30 minutes, mark moves at most 1% per update.
PREMIUM_SAMPLE_SECONDS = 5
EMA_WINDOW_SECONDS = 30 * 60
MAX_MARK_UPDATE = Decimal("0.01")
# Irwin-Hall draw: 12 uniforms on [0, 1) with this many steps each.
_UNIFORM_STEPS = 10**9
_DRAWS = 12


def ema_alpha(
    window_seconds: int = EMA_WINDOW_SECONDS, sample_seconds: int = PREMIUM_SAMPLE_SECONDS
) -> Decimal:
    """The EMA's smoothing factor for samples every `sample_seconds` over `window_seconds`:
    2 / (N + 1) with N samples in the window (N = 360 for 30 minutes of 5-second samples)."""
    samples = window_seconds // sample_seconds
    if samples < 1:
        raise ValueError("the EMA window must hold at least one sample")
    return TWO / Decimal(samples + 1)


DEFAULT_ALPHA = ema_alpha()


def ema_update(
    previous: Decimal | None, sample: Decimal, alpha: Decimal = DEFAULT_ALPHA
) -> Decimal:
    """One EMA step: previous + alpha x (sample - previous); no history counts as 0."""
    base = ZERO if previous is None else previous
    return (base + alpha * (sample - base)).quantize(RATIO_QUANTUM, ROUND_HALF_EVEN)


def ema(
    samples: Iterable[Decimal], alpha: Decimal = DEFAULT_ALPHA, start: Decimal | None = None
) -> Decimal:
    """The EMA after folding `samples` in order, from `start` (0 when None)."""
    value = ZERO if start is None else start
    for sample in samples:
        value = ema_update(value, sample, alpha)
    return value


def premium(best_bid: Decimal | None, best_ask: Decimal | None, index: Decimal) -> Decimal | None:
    """(mid - index) / index, mid from the best bid and ask; None when a side is empty or
    there is no positive index."""
    if best_bid is None or best_ask is None or index <= ZERO:
        return None
    mid = (best_bid + best_ask) / TWO
    return ((mid - index) / index).quantize(RATIO_QUANTUM, ROUND_HALF_EVEN)


def median(values: Sequence[Decimal]) -> Decimal:
    """The median; of an even count, the mean of the middle two."""
    if not values:
        raise ValueError("median of nothing")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / TWO


def cap_update(
    price: Decimal, previous: Decimal | None, limit: Decimal = MAX_MARK_UPDATE
) -> Decimal:
    """`price` held within previous x (1 -+ limit); unchanged when there is no previous."""
    if previous is None or previous <= ZERO:
        return price
    low, high = previous * (ONE - limit), previous * (ONE + limit)
    return min(max(price, low), high)


def mark_price(
    index: Decimal,
    ema_premium: Decimal,
    best_bid: Decimal | None,
    best_ask: Decimal | None,
    previous: Decimal | None = None,
    limit: Decimal = MAX_MARK_UPDATE,
) -> Decimal:
    """median(index x (1 + EMA premium), best bid, best ask), an empty side dropped, capped
    at +-`limit` of the previous mark, rounded to PRICE_QUANTUM."""
    fair = index * (ONE + ema_premium)
    parts = [fair, *(side for side in (best_bid, best_ask) if side is not None)]
    capped = cap_update(median(parts), previous, limit)
    return capped.quantize(PRICE_QUANTUM, ROUND_HALF_EVEN)


def normal_draw(rng: random.Random) -> Decimal:
    """An approximately standard-normal Decimal from integer draws (Irwin-Hall, n = 12:
    mean 0, variance 1, bounded to [-6, 6])."""
    total = sum(rng.randrange(_UNIFORM_STEPS) for _ in range(_DRAWS))
    return Decimal(total - 6 * _UNIFORM_STEPS) / Decimal(_UNIFORM_STEPS)


def step_rng(seed: int, step: int) -> random.Random:
    """The generator of one step of one seeded walk (independent of other steps)."""
    return random.Random(f"{seed}:{step}")


def walk_step(price: Decimal, volatility: Decimal, seed: int, step: int) -> Decimal:
    """The simulated index after one tick: price x exp(volatility x z - volatility^2 / 2),
    z drawn from (seed, step); never below MIN_PRICE."""
    if volatility <= ZERO:
        return price
    z = normal_draw(step_rng(seed, step))
    with localcontext() as ctx:
        ctx.prec = 34
        factor = (volatility * z - volatility * volatility / TWO).exp()
        moved = (price * factor).quantize(PRICE_QUANTUM, ROUND_HALF_EVEN)
    return max(moved, MIN_PRICE)


def random_walk(
    start: Decimal, volatility: Decimal, seed: int, steps: int, first_step: int = 0
) -> list[Decimal]:
    """`steps` successive simulated prices from `start` (steps first_step, first_step + 1, ...)."""
    out, price = [], start
    for step in range(first_step, first_step + steps):
        price = walk_step(price, volatility, seed, step)
        out.append(price)
    return out
