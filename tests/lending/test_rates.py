"""Pool math of lending/rates.py: hand-computed tables, then properties (hypothesis)."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending.rates import (
    MAJOR_POOL,
    STABLECOIN_POOL,
    PoolParams,
    borrow_rate,
    borrower_interest,
    check_throttle,
    entry_fee,
    interest_for_period,
    lend_rate,
    lender_interest,
    max_lend_redemption,
    max_new_borrow,
    pool_rates,
    seconds_to_next_hour,
    split_hourly_interest,
    utilization,
    utilization_ceiling,
)

D = Decimal


BOUNDED = settings(max_examples=200, deadline=None)


# ----------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    ("borrowed", "lent", "expected"),
    [
        ("0", "0", "0"),  # empty pool
        ("0", "100", "0"),
        ("5", "0", "1"),  # borrows with nothing lent: capped at 1
        ("150", "100", "1"),  # capped
        ("80", "100", "0.8"),
        ("1", "3", "0.333333333333333333"),  # 18 places, rounded down
        ("2", "3", "0.666666666666666666"),  # rounded DOWN, not ...667
    ],
)
def test_utilization_table(borrowed: str, lent: str, expected: str) -> None:
    assert utilization(D(borrowed), D(lent)) == D(expected)


@pytest.mark.parametrize(
    ("params", "u", "expected"),
    [
        # USDC/USDT: rMin 0, rOpt 8 %, Uopt 80 %, rMax 150 %
        (STABLECOIN_POOL, "0", "0"),
        (STABLECOIN_POOL, "0.4", "0.04"),  # 0 + 0.08 * 0.4 / 0.8
        (STABLECOIN_POOL, "0.8", "0.08"),  # the kink: rOpt
        # 0.08 * (1.5 / 0.08) ^ ((0.9 - 0.8) / 0.2) = 0.08 * 18.75 ^ 0.5
        # = 0.08 * 4.3301270189221932338... = 0.34641016151377545870...
        (STABLECOIN_POOL, "0.9", "0.346410161513775459"),
        (STABLECOIN_POOL, "1", "1.5"),  # rMax
        (STABLECOIN_POOL, "1.2", "1.5"),  # clamped to U = 1
        # SOL/BTC/ETH: rMin 0, rOpt 5 %, Uopt 70 %, rMax 200 %
        (MAJOR_POOL, "0.35", "0.025"),  # 0.05 * 0.35 / 0.7
        (MAJOR_POOL, "0.7", "0.05"),
        # 0.05 * 40 ^ ((0.85 - 0.7) / 0.3) = 0.05 * sqrt(40) = 0.05 * 6.3245553203367586640
        # = 0.31622776601683793320
        (MAJOR_POOL, "0.85", "0.316227766016837933"),
        (MAJOR_POOL, "1", "2"),
    ],
)
def test_borrow_rate_table(params: PoolParams, u: str, expected: str) -> None:
    assert borrow_rate(D(u), params) == D(expected)


def test_borrow_rate_with_nonzero_rmin() -> None:
    params = PoolParams(
        r_min=D("0.01"), r_opt=D("0.05"), r_max=D("0.5"), optimal_utilization=D("0.5")
    )
    # 0.01 + (0.05 - 0.01) * 0.25 / 0.5 = 0.01 + 0.02 = 0.03
    assert borrow_rate(D("0.25"), params) == D("0.03")
    # 0.05 * 10 ^ ((0.75 - 0.5) / 0.5) = 0.05 * sqrt(10) = 0.05 * 3.16227766016837933199889
    assert borrow_rate(D("0.75"), params) == D("0.158113883008418967")


@pytest.mark.parametrize(
    ("params", "u", "expected"),
    [
        (STABLECOIN_POOL, "0.4", "0.0144"),  # 0.04 * 0.4 * 0.9
        (STABLECOIN_POOL, "0.8", "0.0576"),  # 0.08 * 0.8 * 0.9
        (STABLECOIN_POOL, "1", "1.35"),  # 1.5 * 1 * 0.9
        # 0.346410161513775459 * 0.9 * 0.9 = 0.28059223082615812179 -> down
        (STABLECOIN_POOL, "0.9", "0.280592230826158121"),
        (MAJOR_POOL, "0.7", "0.0315"),  # 0.05 * 0.7 * 0.9
        (MAJOR_POOL, "0", "0"),
    ],
)
def test_lend_rate_table(params: PoolParams, u: str, expected: str) -> None:
    assert lend_rate(D(u), params) == D(expected)


def test_pool_rates() -> None:
    rates = pool_rates(D("400"), D("1000"), STABLECOIN_POOL)
    assert (rates.utilization, rates.borrow_rate, rates.lend_rate) == (
        D("0.4"),
        D("0.04"),
        D("0.0144"),
    )


def test_hourly_interest_rounding() -> None:
    # 1000 USDC at 8 %: 1000 * 0.08 / 8760 = 0.0091324200913...
    assert borrower_interest(D("1000"), D("0.08"), 6) == D("0.009133")  # up
    assert lender_interest(D("1000"), D("0.08"), 6) == D("0.009132")  # down
    # exact on the grid: 8760 * 0.1 / 8760 = 0.1, no rounding either way
    assert borrower_interest(D("8760"), D("0.1"), 6) == D("0.1")
    assert lender_interest(D("8760"), D("0.1"), 6) == D("0.1")
    # 1 SOL at 5 %: 0.05 / 8760 = 0.000005707762557... SOL (9 decimals)
    assert borrower_interest(D("1"), D("0.05"), 9) == D("0.000005708")
    assert lender_interest(D("1"), D("0.05"), 9) == D("0.000005707")
    # a tiny borrow still pays one unit; a tiny lend earns nothing
    assert borrower_interest(D("0.000001"), D("0.01"), 6) == D("0.000001")
    assert lender_interest(D("0.000001"), D("0.01"), 6) == D("0")
    assert borrower_interest(D("0"), D("0.5"), 6) == D("0")


def test_interest_half_even_and_bad_input() -> None:
    # 1 * 0.0876 * 3600 / 31,536,000 = 0.00001 exactly -> 0.000010 at 6 places
    assert interest_for_period(D("1"), D("0.0876"), 5, 3600, "ROUND_HALF_EVEN") == D("0.00001")
    with pytest.raises(ValueError):
        borrower_interest(D("-1"), D("0.1"), 6)
    with pytest.raises(ValueError):
        interest_for_period(D("1"), D("0.1"), 6, 3600, "ROUND_CEILING")


def test_entry_fee_to_next_hour() -> None:
    at = datetime(2025, 1, 1, 0, 50, tzinfo=UTC)
    assert seconds_to_next_hour(at) == D("600")
    # 1000 USDC at 8.76 % for 600 s: 1000 * 0.0876 * 600 / 31,536,000 = 0.0016666... -> up
    assert entry_fee(D("1000"), D("0.0876"), 6, at) == D("0.001667")
    # exactly on the hour: covered until the next one, a full hour
    assert seconds_to_next_hour(datetime(2025, 1, 1, 1, 0, tzinfo=UTC)) == D("3600")
    # microseconds count; a +05:30 zone is converted to UTC first (10:20:30.5 IST = 04:50:30.5 UTC)
    ist = timezone(timedelta(hours=5, minutes=30))
    assert seconds_to_next_hour(datetime(2025, 1, 1, 10, 20, 30, 500000, tzinfo=ist)) == D("569.5")
    # a naive datetime is read as UTC
    assert seconds_to_next_hour(datetime(2025, 1, 1, 23, 59, 59)) == D("1")


def test_split_hourly_interest_table() -> None:
    # USDC pool: borrowed 800, lent 1000 -> U 0.8, borrow 8 %, lend 0.08 * 0.8 * 0.9 = 5.76 %
    borrows = {"a": D("500"), "b": D("300")}
    lends = {"c": D("600"), "d": D("400")}
    split = split_hourly_interest(borrows, lends, STABLECOIN_POOL, 6)
    assert split.rates.utilization == D("0.8")
    # a: 500 * 0.08 / 8760 = 0.0045662100... -> 0.004567
    # b: 300 * 0.08 / 8760 = 0.00273972... -> 0.002740
    assert split.borrower_charges == {"a": D("0.004567"), "b": D("0.002740")}
    # c: 600 * 0.0576 / 8760 = 0.00394520... -> 0.003945
    # d: 400 * 0.0576 / 8760 = 0.00263013... -> 0.002630
    assert split.lender_credits == {"c": D("0.003945"), "d": D("0.002630")}
    # fee = 0.007307 - 0.006575 = 0.000732 (the 10 % plus rounding residual)
    assert split.fee == D("0.000732")


def test_split_refuses_inconsistent_rates() -> None:
    bad = pool_rates(D("1"), D("1"), STABLECOIN_POOL)  # rates of a full pool
    with pytest.raises(ValueError):
        split_hourly_interest({"a": D("1")}, {"b": D("1000")}, STABLECOIN_POOL, 6, rates=bad)


@pytest.mark.parametrize(
    ("u0", "u1", "used", "liq", "allowed", "reason", "consumed"),
    [
        ("0.50", "0.89", "0", False, True, None, "0"),  # below threshold: free
        (
            "0.85",
            "0.91",
            "0",
            False,
            True,
            None,
            "0.01",
        ),  # crosses 0.90: only 0.01 counts
        ("0.90", "0.92", "0", False, True, None, "0.02"),  # exactly the whole budget
        ("0.90", "0.93", "0", False, False, "Throttled", "0"),  # more than the budget
        ("0.91", "0.92", "0.015", False, False, "Throttled", "0"),  # budget nearly used
        ("0.91", "0.915", "0.015", False, True, None, "0.005"),
        ("0.97", "0.985", "0", False, False, "MaxUtilization", "0"),  # past 98 %
        ("0.97", "0.985", "0", True, True, None, "0"),  # liquidation: exempt
        (
            "0.95",
            "0.999",
            "0.05",
            True,
            True,
            None,
            "0",
        ),  # liquidation ignores budget too
        ("0.95", "0.94", "0.05", False, True, None, "0"),  # lowering U is always fine
        (
            "0.40",
            "0.85",
            "0.5",
            False,
            True,
            None,
            "0",
        ),  # overspent budget irrelevant below 90 %
    ],
)
def test_throttle_table(
    u0: str,
    u1: str,
    used: str,
    liq: bool,
    allowed: bool,
    reason: str | None,
    consumed: str,
) -> None:
    check = check_throttle(D(u0), D(u1), STABLECOIN_POOL, budget_used=D(used), is_liquidation=liq)
    assert (check.allowed, check.reason, check.budget_consumed) == (
        allowed,
        reason,
        D(consumed),
    )


def test_max_borrow_and_redemption() -> None:
    # lent 1000, borrowed 850 (U 0.85): ceiling min(0.98, 0.90 + 0.02) = 0.92 -> borrow 70 more
    assert max_new_borrow(D("850"), D("1000"), STABLECOIN_POOL, 6) == D("70")
    # redeem until 850 / lent = 0.92: lent >= 923.913044 (rounded up) -> redeem 76.086956
    assert max_lend_redemption(D("850"), D("1000"), STABLECOIN_POOL, 6) == D("76.086956")
    # U 0.99 is already past maxU: nothing more
    assert max_new_borrow(D("990"), D("1000"), STABLECOIN_POOL, 6) == D("0")
    assert max_lend_redemption(D("990"), D("1000"), STABLECOIN_POOL, 6) == D("0")
    # nothing borrowed: everything redeemable
    assert max_lend_redemption(D("0"), D("5"), STABLECOIN_POOL, 6) == D("5")


def test_params_validation() -> None:
    with pytest.raises(ValueError):
        PoolParams(r_min=D("0"), r_opt=D("0.1"), r_max=D("0.05"), optimal_utilization=D("0.8"))
    with pytest.raises(ValueError):
        PoolParams(r_min=D("0"), r_opt=D("0.1"), r_max=D("1"), optimal_utilization=D("1"))
    with pytest.raises(ValueError):
        PoolParams(r_min=D("0"), r_opt=D("0"), r_max=D("1"), optimal_utilization=D("0.5"))


# ------------------------------------------------------------------------- properties

fractions01 = st.decimals(
    min_value=0, max_value=1, places=18, allow_nan=False, allow_infinity=False
)


@st.composite
def pool_params(draw: st.DrawFn) -> PoolParams:
    r_opt = draw(st.decimals(min_value="0.001", max_value="1", places=6))
    r_min = draw(st.decimals(min_value=0, max_value=r_opt, places=6))
    r_max = draw(st.decimals(min_value=r_opt, max_value="10", places=6))
    uopt = draw(st.decimals(min_value="0.05", max_value="0.95", places=4))
    fee = draw(st.decimals(min_value=0, max_value="0.5", places=4))
    return PoolParams(r_min=r_min, r_opt=r_opt, r_max=r_max, optimal_utilization=uopt, fee=fee)


params_st = st.one_of(st.just(STABLECOIN_POOL), st.just(MAJOR_POOL), pool_params())


@BOUNDED
@given(params_st, fractions01, fractions01)
def test_borrow_rate_monotone(params: PoolParams, a: Decimal, b: Decimal) -> None:
    lo, hi = min(a, b), max(a, b)
    assert borrow_rate(lo, params) <= borrow_rate(hi, params)
    assert params.r_min <= borrow_rate(lo, params) <= params.r_max


@BOUNDED
@given(params_st)
def test_borrow_rate_continuous_at_kink(params: PoolParams) -> None:
    uopt = params.optimal_utilization
    eps = D("1e-18")
    left, at, right = (
        borrow_rate(uopt - eps, params),
        borrow_rate(uopt, params),
        borrow_rate(uopt + eps, params),
    )
    assert at == params.r_opt
    assert abs(right - left) <= D("1e-12")
    assert abs(right - at) <= D("1e-12") and abs(at - left) <= D("1e-12")


@BOUNDED
@given(params_st, fractions01)
def test_lend_rate_le_borrow_rate(params: PoolParams, u: Decimal) -> None:
    assert D(0) <= lend_rate(u, params) <= borrow_rate(u, params)


amounts = st.decimals(min_value=0, max_value="1e9", places=9)


@BOUNDED
@given(
    params_st,
    st.integers(min_value=0, max_value=9),
    st.lists(amounts, max_size=12),
    st.lists(amounts, max_size=12),
)
def test_split_is_zero_sum_and_fee_nonnegative(
    params: PoolParams, decimals: int, borrows: list[Decimal], lends: list[Decimal]
) -> None:
    # borrows can't exceed lends in a real pool, but the split must hold either way
    split = split_hourly_interest(
        dict(enumerate(borrows)), dict(enumerate(lends)), params, decimals
    )
    total_charged = sum(split.borrower_charges.values(), D(0))
    total_credited = sum(split.lender_credits.values(), D(0))
    assert split.fee >= 0
    assert total_charged == total_credited + split.fee
    unit = D(1).scaleb(-decimals)
    for key, amount in dict(enumerate(borrows)).items():
        exact = Fraction(amount) * Fraction(split.rates.borrow_rate) / 8760
        charge = Fraction(split.borrower_charges[key])
        assert exact <= charge < exact + Fraction(unit)  # rounded up
    for key, amount in dict(enumerate(lends)).items():
        exact = Fraction(amount) * Fraction(split.rates.lend_rate) / 8760
        credit = Fraction(split.lender_credits[key])
        assert exact - Fraction(unit) < credit <= exact  # rounded down


@BOUNDED
@given(
    amounts,
    st.decimals(min_value=0, max_value="5", places=18),
    st.integers(min_value=0, max_value=9),
)
def test_borrower_never_pays_less_than_lender_earns(
    amount: Decimal, apr: Decimal, decimals: int
) -> None:
    up = borrower_interest(amount, apr, decimals)
    down = lender_interest(amount, apr, decimals)
    assert down <= up <= down + D(1).scaleb(-decimals)
    assert up == interest_for_period(amount, apr, decimals, 3600, ROUND_UP)
    assert down == interest_for_period(amount, apr, decimals, 3600, ROUND_DOWN)


@BOUNDED
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_seconds_to_next_hour_bounds(at: datetime) -> None:
    seconds = seconds_to_next_hour(at)
    assert D(0) < seconds <= D(3600)
    boundary = at + timedelta(microseconds=int(seconds * 1_000_000))
    assert (boundary.minute, boundary.second, boundary.microsecond) == (0, 0, 0)


@BOUNDED
@given(
    params_st,
    fractions01,
    fractions01,
    st.decimals(min_value=0, max_value="0.1", places=4),
    st.booleans(),
)
def test_throttle_rules(
    params: PoolParams, u0: Decimal, u1: Decimal, used: Decimal, liq: bool
) -> None:
    check = check_throttle(u0, u1, params, budget_used=used, is_liquidation=liq)
    if liq or u1 <= u0:
        assert check.allowed and check.budget_consumed == 0
        return
    # non-liquidation raising U: never past maxU, and exactly the ceiling rule
    if u1 > params.max_utilization:
        assert not check.allowed and check.reason == "MaxUtilization"
    assert check.allowed == (u1 <= utilization_ceiling(u0, params, used))
    if check.allowed:
        assert u1 <= params.max_utilization
        assert check.budget_consumed == max(
            D(0), u1 - max(u0, params.throttle_utilization_threshold)
        )
        assert (
            check.budget_consumed == 0
            or used + check.budget_consumed <= params.throttle_update_fraction
        )
        if u1 <= params.throttle_utilization_threshold:
            assert check.budget_consumed == 0
    else:
        assert check.budget_consumed == 0


@BOUNDED
@given(params_st, st.lists(fractions01, min_size=1, max_size=20))
def test_throttle_budget_caps_one_hour(params: PoolParams, targets: list[Decimal]) -> None:
    # start the hour at the threshold and try to push U upwards step by step
    u = params.throttle_utilization_threshold
    start, used = u, D(0)
    for target in sorted(targets):
        check = check_throttle(u, target, params, budget_used=used)
        if check.allowed:
            used += check.budget_consumed
            u = max(u, target)
    assert u <= min(params.max_utilization, start + params.throttle_update_fraction)
    assert used <= params.throttle_update_fraction


@BOUNDED
@given(
    params_st,
    st.decimals(min_value=0, max_value="1e6", places=6),
    st.decimals(min_value="0.000001", max_value="1e6", places=6),
)
def test_max_borrow_respects_throttle(params: PoolParams, borrowed: Decimal, lent: Decimal) -> None:
    u0 = utilization(borrowed, lent)
    room = max_new_borrow(borrowed, lent, params, 6)
    if room > 0:
        assert check_throttle(u0, utilization(borrowed + room, lent), params).allowed
    redeem = max_lend_redemption(borrowed, lent, params, 6)
    assert 0 <= redeem <= lent
    if 0 < redeem < lent:
        assert check_throttle(u0, utilization(borrowed, lent - redeem), params).allowed
