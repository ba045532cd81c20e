"""Account risk of settlement/risk.py: hand-computed scenarios, then properties."""

import time
from dataclasses import replace
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.risk import (
    DEFAULT_ASSET_PARAMS,
    PERP_IMF,
    PERP_MMF,
    RISK_CONTEXT,
    AccountRiskInput,
    AssetBalance,
    HaircutFunction,
    MarketRiskData,
    PerpPosition,
    SqrtFunction,
    bankruptcy_price,
    compute_account_risk,
    estimated_liquidation_price,
    liquidation_candidates,
    liquidation_price,
    prepare_for_asset,
    prepare_for_perp,
    revalue,
    revalue_all,
)

D = Decimal


BOUNDED = settings(max_examples=200, deadline=None)
SOL_PERP = "SOL_USDC_PERP"
BTC_PERP = "BTC_USDC_PERP"


def div(a: str | int, b: str | int) -> Decimal:
    """Expected quotient at the module's precision (34 digits)."""
    return RISK_CONTEXT.divide(D(a), D(b))


def market(**prices: str) -> MarketRiskData:
    return MarketRiskData(index_prices={k: D(v) for k, v in prices.items()})


def usdc(qty: str) -> AssetBalance:
    return AssetBalance("USDC", D(qty))


def perp(
    symbol: str, qty: str, entry: str, mark: str, bid: str = "0", ask: str = "0"
) -> PerpPosition:
    return PerpPosition(
        symbol=symbol,
        net_quantity=D(qty),
        net_cost=D(qty) * D(entry),
        mark_price=D(mark),
        open_bid_quantity=D(bid),
        open_ask_quantity=D(ask),
    )


def at_mark(account: AccountRiskInput, symbol: str, mark: Decimal) -> AccountRiskInput:
    positions = tuple(
        replace(p, mark_price=mark) if p.symbol == symbol else p for p in account.positions
    )
    return replace(account, positions=positions)


def at_index(mkt: MarketRiskData, asset: str, price: Decimal) -> MarketRiskData:
    return replace(mkt, index_prices={**mkt.index_prices, asset: price})


def assert_mf_equals_mmf(account: AccountRiskInput, mkt: MarketRiskData) -> None:
    risk = compute_account_risk(account, mkt)
    assert risk.margin_fraction is not None
    assert abs(risk.margin_fraction - risk.mmf) <= D("1e-9")


# ------------------------------------------------------------------------- scenarios


def test_usdc_collateral_one_sol_long_in_profit() -> None:
    # 10,000 USDC; long 10 SOL perp entered at 100, mark 110
    account = AccountRiskInput(
        balances=(usdc("10000"),), positions=(perp(SOL_PERP, "10", "100", "110"),)
    )
    risk = compute_account_risk(account, market())
    # collateral = 10,000 x 1 x 1.00
    assert risk.collateral_value == D("10000")
    assert risk.assets_value == D("10000")
    assert risk.liabilities == D("0")
    # uPnL = 10 x (110 - 100) = 100 ; net equity = 10,000 + 100 - 0
    assert risk.pnl_unrealized == D("100")
    assert risk.net_equity == D("10100")
    (pos,) = risk.positions
    # notional = |10| x 110 = 1,100 < 45,754.8 kink: IMF = base 0.02, MMF = base 0.0125
    assert (pos.notional, pos.net_exposure_notional, pos.entry_price) == (
        D("1100"),
        D("1100"),
        D("100"),
    )
    assert (pos.imf, pos.mmf) == (D("0.02"), D("0.0125"))
    assert risk.total_exposure_notional == D("1100") == risk.futures_exposure_notional
    # locked = 1,100 x 0.02 = 22 ; available = 10,100 - 22 ; maintenance = 1,100 x 0.0125
    assert risk.net_equity_locked == D("22")
    assert risk.net_equity_available == D("10078")
    assert risk.maintenance_margin == D("13.75")
    assert (risk.imf, risk.mmf) == (D("0.02"), D("0.0125"))
    # MF = 10,100 / 1,100 = 9.1818...
    assert risk.margin_fraction == div(10100, 1100)
    assert risk.can_increase_risk and not risk.should_liquidate
    (row,) = risk.collateral
    assert (
        row.symbol,
        row.total_quantity,
        row.balance_notional,
        row.collateral_weight,
        row.collateral_value,
    ) == (
        "USDC",
        D("10000"),
        D("10000"),
        D("1.00"),
        D("10000"),
    )
    # over-collateralized long: healthy even at mark 0 -> no liquidation / bankruptcy price
    # (equity at m: 10,000 + 10 m - 1,000 = 9,000 + 10 m > 0.125 m for every m >= 0)
    assert estimated_liquidation_price(account, market(), SOL_PERP) is None
    assert bankruptcy_price(prepare_for_perp(account, market(), SOL_PERP)) is None


def test_usdc_collateral_leveraged_sol_long_liquidation_and_bankruptcy() -> None:
    # 1,000 USDC; long 100 SOL at 100, mark 100: notional 10,000, MF = 1,000 / 10,000 = 0.1
    account = AccountRiskInput(
        balances=(usdc("1000"),), positions=(perp(SOL_PERP, "100", "100", "100"),)
    )
    risk = compute_account_risk(account, market())
    assert risk.margin_fraction == D("0.1")
    assert risk.net_equity_locked == D("200")  # 10,000 x 0.02
    # equity(m) = 1,000 + 100 (m - 100) = -9,000 + 100 m ; maintenance(m) = 100 m x 0.0125
    # MF = MMF  <=>  -9,000 + 100 m = 1.25 m  <=>  m = 9,000 / 98.75 = 91.139240506329...
    liq = estimated_liquidation_price(account, market(), SOL_PERP)
    assert liq == D("91.13924050632911392405063291139241")
    assert_mf_equals_mmf(at_mark(account, SOL_PERP, liq), market())
    # bankruptcy: -9,000 + 100 m = 0  ->  m = 90
    assert bankruptcy_price(prepare_for_perp(account, market(), SOL_PERP)) == D("90")
    assert compute_account_risk(at_mark(account, SOL_PERP, D("91.1")), market()).should_liquidate
    assert not compute_account_risk(
        at_mark(account, SOL_PERP, D("91.2")), market()
    ).should_liquidate


def test_short_liquidation_price_above_mark() -> None:
    # 1,000 USDC; short 100 SOL at 100, mark 100
    account = AccountRiskInput(
        balances=(usdc("1000"),), positions=(perp(SOL_PERP, "-100", "100", "100"),)
    )
    # equity(m) = 1,000 - 100 (m - 100) = 11,000 - 100 m ; maintenance(m) = 1.25 m
    # 11,000 - 100 m = 1.25 m  ->  m = 11,000 / 101.25 = 108.6419753...
    liq = estimated_liquidation_price(account, market(), SOL_PERP)
    assert liq == div(11000, "101.25")
    assert_mf_equals_mmf(at_mark(account, SOL_PERP, liq), market())
    # bankruptcy: 11,000 - 100 m = 0 -> 110
    assert bankruptcy_price(prepare_for_perp(account, market(), SOL_PERP)) == D("110")


def test_sol_collateral_inverse_sqrt_ten_x_long() -> None:
    # 20 SOL at index 150: w = min(0.85, 1.1 / (1 + 0.002 x sqrt(20))) = min(0.85, 1.0813) = 0.85
    # balance 3,000, collateral 2,550 ; 10x long: 170 SOL perp at 150 = 25,500 notional
    account = AccountRiskInput(
        balances=(AssetBalance("SOL", D("20")),), positions=(perp(SOL_PERP, "170", "150", "150"),)
    )
    mkt = market(SOL="150")
    risk = compute_account_risk(account, mkt)
    (row,) = risk.collateral
    assert (row.balance_notional, row.collateral_weight, row.collateral_value) == (
        D("3000"),
        D("0.85"),
        D("2550"),
    )
    assert risk.net_equity == D("2550")
    assert risk.total_exposure_notional == D("25500")
    assert risk.margin_fraction == D("0.1")  # 10x
    assert (risk.imf, risk.mmf) == (D("0.02"), D("0.0125"))  # 25,500 < kink
    assert risk.can_increase_risk
    # perp mark moving, SOL index static: -22,950 + 170 m = 170 m x 0.0125
    # -> m = 22,950 / 167.875 = 136.708860759...
    liq = estimated_liquidation_price(account, mkt, SOL_PERP)
    assert liq == D("136.7088607594936708860759493670886")
    assert_mf_equals_mmf(at_mark(account, SOL_PERP, liq), mkt)
    # SOL index moving (the collateral), perp mark static: equity = 20 x 0.85 x p = 17 p,
    # maintenance stays 25,500 x 0.0125 = 318.75  ->  17 p = 318.75  ->  p = 18.75
    liq_index = liquidation_price(prepare_for_asset(account, mkt, "SOL"))
    assert liq_index == D("18.75")
    assert_mf_equals_mmf(account, at_index(mkt, "SOL", liq_index))


def test_sol_collateral_haircut_binds_and_sqrt_margin_on_huge_long() -> None:
    # 90,000 SOL: 1.1 / (1 + 0.002 x sqrt(90,000)) = 1.1 / (1 + 0.6) = 0.6875 < 0.85
    # index 110: balance 9,900,000 ; collateral 9,900,000 x 0.6875 = 6,806,250
    # 10x long: 618,750 SOL perp at 110 = 68,062,500 notional = 8,250^2
    account = AccountRiskInput(
        balances=(AssetBalance("SOL", D("90000")),),
        positions=(perp(SOL_PERP, "618750", "110", "110"),),
    )
    risk = compute_account_risk(account, market(SOL="110"))
    assert risk.collateral[0].collateral_weight == D("0.6875")
    assert risk.collateral_value == D("6806250")
    # IMF = 0.0000935 x 8,250 = 0.771375 ; MMF = 0.0000561 x 8,250 = 0.462825
    assert (risk.imf, risk.mmf) == (D("0.771375"), D("0.462825"))
    assert risk.margin_fraction == D("0.1")
    assert not risk.can_increase_risk
    assert risk.should_liquidate


def test_usdc_borrow() -> None:
    # 10 SOL at 100 (w 0.85 -> 850) ; USDC -500 borrowed
    account = AccountRiskInput(balances=(AssetBalance("SOL", D("10")), usdc("-500")))
    mkt = market(SOL="100")
    risk = compute_account_risk(account, mkt)
    assert risk.collateral_value == D("850")
    assert risk.liabilities == D("500")
    assert risk.net_equity == D("350")  # 850 - 500
    (borrow,) = risk.borrows
    # borrow exposure 500 x 1 ; IMF base 0.10 (USDC), MMF half 0.05
    assert (borrow.net_exposure_quantity, borrow.net_exposure_notional) == (D("-500"), D("500"))
    assert (borrow.imf, borrow.mmf) == (D("0.10"), D("0.05"))
    assert risk.total_exposure_notional == D("500") and risk.futures_exposure_notional == 0
    assert risk.margin_fraction == D("0.7")  # 350 / 500
    assert risk.net_equity_locked == D("50")  # 500 x 0.10
    assert risk.net_equity_available == D("300")
    assert risk.maintenance_margin == D("25")  # 500 x 0.05
    usdc_row = risk.collateral[1]
    assert (usdc_row.balance_notional, usdc_row.collateral_value) == (D("-500"), D("0"))
    # SOL falling: -500 + 8.5 p = 25  ->  p = 525 / 8.5 = 61.7647...
    liq = liquidation_price(prepare_for_asset(account, mkt, "SOL"))
    assert liq == D("61.76470588235294117647058823529412")
    assert_mf_equals_mmf(account, at_index(mkt, "SOL", liq))
    # bankruptcy on SOL: -500 + 8.5 p = 0 -> 58.82...
    assert bankruptcy_price(prepare_for_asset(account, mkt, "SOL")) == div(500, "8.5")
    # USDC itself repricing (a de-peg up): 850 - 500 p = 500 p x 0.05 -> p = 850 / 525
    liq_usdc = liquidation_price(prepare_for_asset(account, mkt, "USDC"))
    assert liq_usdc == div(850, 525)
    assert_mf_equals_mmf(account, at_index(mkt, "USDC", liq_usdc))


def test_sol_borrow_short_via_spot_margin() -> None:
    # 1,000 USDC ; SOL -5 at 100: liabilities 500, equity 500 ; IMF 0.20, MMF 0.10 (non-USDC)
    account = AccountRiskInput(balances=(usdc("1000"), AssetBalance("SOL", D("-5"))))
    mkt = market(SOL="100")
    risk = compute_account_risk(account, mkt)
    assert (risk.net_equity, risk.total_exposure_notional) == (D("500"), D("500"))
    assert (risk.imf, risk.mmf, risk.margin_fraction) == (D("0.2"), D("0.1"), D("1"))
    # SOL rising: 1,000 - 5 p = 5 p x 0.10  ->  p = 1,000 / 5.5 = 181.81...
    liq = liquidation_price(prepare_for_asset(account, mkt, "SOL"))
    assert liq == div(1000, "5.5")
    assert_mf_equals_mmf(account, at_index(mkt, "SOL", liq))


def test_weighted_account_imf_over_perp_and_borrow() -> None:
    # SOL 20 at 100 (collateral 1,700) ; USDC -500 (IMF 0.10, MMF 0.05) ; long 10 SOL perp at 100
    account = AccountRiskInput(
        balances=(AssetBalance("SOL", D("20")), usdc("-500")),
        positions=(perp(SOL_PERP, "10", "100", "100"),),
    )
    risk = compute_account_risk(account, market(SOL="100"))
    # exposure 500 + 1,000 = 1,500 ; IMF = (500 x 0.10 + 1,000 x 0.02) / 1,500 = 70 / 1,500
    assert risk.total_exposure_notional == D("1500")
    assert risk.imf == div(70, 1500)
    # MMF = (500 x 0.05 + 1,000 x 0.0125) / 1,500 = 37.5 / 1,500 = 0.025
    assert risk.mmf == D("0.025")


def test_leverage_limit_raises_imf() -> None:
    # 1,000 USDC, long 100 SOL at 100: MF 0.1 ; leverage limit 5 -> IMF >= 0.2
    account = AccountRiskInput(
        balances=(usdc("1000"),),
        positions=(perp(SOL_PERP, "100", "100", "100"),),
        leverage_limit=D("5"),
    )
    risk = compute_account_risk(account, market())
    assert risk.imf == D("0.2")  # max(0.02, 1 / 5)
    assert risk.mmf == D("0.0125")  # MMF is not touched by the leverage limit
    assert risk.net_equity_locked == D("2000")  # 10,000 x 0.2
    assert risk.net_equity_available == D("-1000")
    assert not risk.can_increase_risk  # MF 0.1 < IMF 0.2
    assert not risk.should_liquidate  # MF 0.1 >= MMF 0.0125
    # limit 20 -> 1/20 = 0.05 still binds ; limit 100 -> 0.01 < 0.02: the sqrt rule wins
    assert compute_account_risk(replace(account, leverage_limit=D("20")), market()).imf == D("0.05")
    assert compute_account_risk(replace(account, leverage_limit=D("100")), market()).imf == D(
        "0.02"
    )


def test_sqrt_rule_kicks_in_above_kink() -> None:
    # kink = (0.02 / 0.0000935)^2 = 213.9037...^2 = 45,754.81 USDC of notional
    assert PERP_IMF.kink_notional == D("45754.81140438674254339557894134803")
    assert PERP_IMF(D("45000")) == D("0.02")  # 0.0000935 x 212.13 = 0.019834 < 0.02
    assert PERP_IMF(D("1000000")) == D("0.0935")  # 0.0000935 x 1,000
    assert PERP_MMF(D("1000000")) == D("0.0561")  # 0.0000561 x 1,000
    # in an account: 100,000 USDC, long 900 SOL at 100 = 90,000 notional, sqrt = 300
    account = AccountRiskInput(
        balances=(usdc("100000"),), positions=(perp(SOL_PERP, "900", "100", "100"),)
    )
    risk = compute_account_risk(account, market())
    (pos,) = risk.positions
    assert pos.imf == D("0.02805")  # 0.0000935 x 300
    assert pos.mmf == D("0.01683")  # 0.0000561 x 300 (> 0.0125 base)
    assert risk.net_equity_locked == D("2524.5")  # 90,000 x 0.02805
    assert risk.maintenance_margin == D("1514.7")  # 90,000 x 0.01683
    # a 45,000 position stays on the base fractions
    small = compute_account_risk(at_mark(account, SOL_PERP, D("50")), market())
    assert (small.positions[0].imf, small.positions[0].mmf) == (D("0.02"), D("0.0125"))


def test_no_exposure_has_no_margin_fraction() -> None:
    account = AccountRiskInput(balances=(usdc("250"), AssetBalance("ETH", D("1"))))
    risk = compute_account_risk(account, market(ETH="3000"))
    # 250 + 3,000 x 0.90 (1.1 / (1 + 0.01) = 1.089 > 0.9)
    assert risk.net_equity == D("2950")
    assert risk.total_exposure_notional == 0
    assert risk.margin_fraction is None
    assert (risk.imf, risk.mmf) == (D(0), D(0))
    assert risk.can_increase_risk and not risk.should_liquidate
    limited = compute_account_risk(replace(account, leverage_limit=D("4")), market(ETH="3000"))
    assert limited.margin_fraction is None and limited.imf == D("0.25")
    empty = compute_account_risk(AccountRiskInput(), market())
    assert empty.net_equity == 0 and empty.margin_fraction is None and empty.can_increase_risk


def test_risk_increasing_open_orders_counted() -> None:
    # long 1 SOL; bids 3, asks 2: long side 1 + 3 = 4, short side 1 - 2 = -1 -> exposure 4
    pos = perp(SOL_PERP, "1", "100", "100", bid="3", ask="2")
    assert pos.net_exposure_quantity == D("4")
    risk = compute_account_risk(
        AccountRiskInput(balances=(usdc("1000"),), positions=(pos,)), market()
    )
    (row,) = risk.positions
    assert (row.notional, row.net_exposure_notional) == (D("100"), D("400"))
    assert risk.total_exposure_notional == D("400")
    assert risk.net_equity_locked == D("8")  # 400 x 0.02
    # long 1 SOL; asks 5: short side 1 - 5 = -4 is worse than long side 1
    assert perp(SOL_PERP, "1", "100", "100", ask="5").net_exposure_quantity == D("-4")
    # reducing orders don't add: long 3 with asks 2 -> max(|3|, |1|) = 3
    assert perp(SOL_PERP, "3", "100", "100", ask="2").net_exposure_quantity == D("3")
    # open orders without a position still lock margin
    flat = perp(SOL_PERP, "0", "0", "100", bid="2")
    only_orders = compute_account_risk(
        AccountRiskInput(balances=(usdc("10"),), positions=(flat,)), market()
    )
    assert only_orders.total_exposure_notional == D("200")
    assert only_orders.margin_fraction == D("0.05")
    # an open spot-margin borrow counts as exposure, not as liability
    pending = AssetBalance("USDC", D("100"), open_borrow_quantity=D("300"))
    borrow_orders = compute_account_risk(AccountRiskInput(balances=(pending,)), market())
    assert borrow_orders.liabilities == 0
    assert borrow_orders.total_exposure_notional == D("300")
    assert borrow_orders.net_equity_locked == D("30")  # 300 x 0.10


def test_collateral_row_parts() -> None:
    bal = AssetBalance("USDT", D("100"), lend_quantity=D("60"), open_order_quantity=D("15"))
    (row,) = compute_account_risk(AccountRiskInput(balances=(bal,)), market(USDT="1")).collateral
    assert (row.lend_quantity, row.open_order_quantity, row.available_quantity) == (
        D("60"),
        D("15"),
        D("25"),
    )
    assert row.collateral_value == D("95")  # lent quantity is collateral too: 100 x 0.95


def test_haircut_and_sqrt_validation() -> None:
    with pytest.raises(ValueError):
        HaircutFunction(D("0.9"), "linear")
    with pytest.raises(ValueError):
        SqrtFunction(D("-0.1"))
    with pytest.raises(ValueError):
        AccountRiskInput(leverage_limit=D(0))
    with pytest.raises(KeyError):
        compute_account_risk(AccountRiskInput(balances=(AssetBalance("SOL", D(1)),)), market())


def test_lean_revalue_matches_clear_path_table() -> None:
    account = AccountRiskInput(
        balances=(AssetBalance("SOL", D("20")), usdc("-500")),
        positions=(perp(SOL_PERP, "10", "100", "100"), perp(BTC_PERP, "-0.5", "60000", "61000")),
        leverage_limit=D("10"),
    )
    mkt = market(SOL="100")
    prepared = prepare_for_perp(account, mkt, SOL_PERP, key="acct-1")
    for mark in ("80", "100", "5000", "123.456"):
        fast = revalue(prepared, D(mark))
        full = compute_account_risk(at_mark(account, SOL_PERP, D(mark)), mkt)
        assert fast.net_equity == full.net_equity
        assert fast.total_exposure_notional == full.total_exposure_notional
        assert fast.margin_fraction == full.margin_fraction
        assert fast.net_equity_locked == full.net_equity_locked
        assert fast.should_liquidate == full.should_liquidate
        assert fast.can_increase_risk == full.can_increase_risk


# ------------------------------------------------------------------------ properties

qty = st.decimals(min_value="-5000", max_value="5000", places=3)
price = st.decimals(min_value="1", max_value="500", places=2)


# the SPEC.md perp functions, a pure sqrt rule with base 0, and flat fractions
MARGIN_FUNCTIONS = [
    (PERP_IMF, PERP_MMF),
    (SqrtFunction(D("0.01"), D("0.0002")), SqrtFunction(D(0), D("0.0001"))),
    (SqrtFunction(D("0.1")), SqrtFunction(D("0.05"))),
]


@st.composite
def accounts(draw: st.DrawFn) -> tuple[AccountRiskInput, MarketRiskData]:
    sol_index = draw(price)
    balances = [
        AssetBalance("USDC", draw(st.decimals(min_value="-20000", max_value="200000", places=6)))
    ]
    if draw(st.booleans()):
        balances.append(
            AssetBalance(
                "SOL",
                draw(st.decimals(min_value="-200", max_value="100000", places=9)),
                open_borrow_quantity=draw(st.decimals(min_value=0, max_value="50", places=2)),
            )
        )
    positions = []
    for symbol, scale in ((SOL_PERP, D(1)), (BTC_PERP, D(200))):
        if draw(st.booleans()):
            q = draw(qty)
            entry = draw(price) * scale
            imf, mmf = draw(st.sampled_from(MARGIN_FUNCTIONS))
            positions.append(
                PerpPosition(
                    symbol=symbol,
                    net_quantity=q,
                    net_cost=q * entry,
                    mark_price=draw(price) * scale,
                    imf_function=imf,
                    mmf_function=mmf,
                    open_bid_quantity=draw(st.decimals(min_value=0, max_value="3000", places=3)),
                    open_ask_quantity=draw(st.decimals(min_value=0, max_value="3000", places=3)),
                )
            )
    leverage = draw(st.one_of(st.none(), st.sampled_from([D(1), D(3), D(10), D(50)])))
    account = AccountRiskInput(
        balances=tuple(balances), positions=tuple(positions), leverage_limit=leverage
    )
    return account, MarketRiskData(index_prices={"SOL": sol_index}, assets=DEFAULT_ASSET_PARAMS)


def close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= D("1e-20") * max(D(1), abs(a), abs(b))


@BOUNDED
@given(accounts(), st.decimals(min_value="0.01", max_value="2000", places=4))
def test_lean_revalue_equals_full_computation(
    case: tuple[AccountRiskInput, MarketRiskData], mark: Decimal
) -> None:
    account, mkt = case
    fast = revalue(prepare_for_perp(account, mkt, SOL_PERP), mark)
    full = compute_account_risk(at_mark(account, SOL_PERP, mark), mkt)
    assert close(fast.net_equity, full.net_equity)
    assert close(fast.total_exposure_notional, full.total_exposure_notional)
    assert close(fast.initial_margin, full.initial_margin)
    assert close(fast.maintenance_margin, full.maintenance_margin)
    assert close(fast.net_equity_locked, full.net_equity_locked)
    if abs(full.net_equity - full.maintenance_margin) > D("1e-15"):
        assert fast.should_liquidate == full.should_liquidate
    if full.total_exposure_notional:
        assert full.margin_fraction is not None and fast.margin_fraction is not None
        assert close(fast.mmf, full.mmf)


@BOUNDED
@given(accounts())
def test_perp_liquidation_price_round_trips(case: tuple[AccountRiskInput, MarketRiskData]) -> None:
    account, mkt = case
    for pos in account.positions:
        liq = estimated_liquidation_price(account, mkt, pos.symbol)
        if liq is None:
            continue
        assert liq > 0
        assert_mf_equals_mmf(at_mark(account, pos.symbol, liq), mkt)
        # liquidated on the adverse side, healthy on the other
        worse, better = (liq * D("0.999999"), liq * D("1.000001"))
        if pos.net_quantity < 0:
            worse, better = better, worse
        assert compute_account_risk(at_mark(account, pos.symbol, worse), mkt).should_liquidate
        assert not compute_account_risk(at_mark(account, pos.symbol, better), mkt).should_liquidate


@BOUNDED
@given(accounts())
def test_asset_liquidation_and_bankruptcy_prices_round_trip(
    case: tuple[AccountRiskInput, MarketRiskData],
) -> None:
    account, mkt = case
    for asset in ("SOL", "USDC"):
        if asset not in {b.symbol for b in account.balances}:
            continue
        prepared = prepare_for_asset(account, mkt, asset)
        liq = liquidation_price(prepared)
        if liq is not None:
            assert_mf_equals_mmf(account, at_index(mkt, asset, liq))
        bankrupt = bankruptcy_price(prepared)
        if bankrupt is not None:
            assert abs(
                compute_account_risk(account, at_index(mkt, asset, bankrupt)).net_equity
            ) <= D("1e-18")


@BOUNDED
@given(accounts())
def test_bankruptcy_price_zeroes_equity(case: tuple[AccountRiskInput, MarketRiskData]) -> None:
    account, mkt = case
    for pos in account.positions:
        bankrupt = bankruptcy_price(prepare_for_perp(account, mkt, pos.symbol))
        if bankrupt is not None:
            equity = compute_account_risk(at_mark(account, pos.symbol, bankrupt), mkt).net_equity
            assert abs(equity) <= D("1e-18")


@BOUNDED
@given(accounts())
def test_predicates_agree_with_fractions(case: tuple[AccountRiskInput, MarketRiskData]) -> None:
    account, mkt = case
    risk = compute_account_risk(account, mkt)
    with localcontext(RISK_CONTEXT):
        parts = risk.collateral_value + risk.pnl_unrealized + risk.unsettled_equity
        assert risk.net_equity == parts - risk.liabilities
    if risk.margin_fraction is None:
        assert (
            risk.total_exposure_notional == 0
            and risk.can_increase_risk
            and not risk.should_liquidate
        )
        return
    assert risk.mmf <= risk.imf
    if abs(risk.margin_fraction - risk.imf) > D("1e-25"):
        assert risk.can_increase_risk == (risk.margin_fraction >= risk.imf)
    if abs(risk.margin_fraction - risk.mmf) > D("1e-25"):
        assert risk.should_liquidate == (risk.margin_fraction < risk.mmf)
    if account.leverage_limit is not None:
        assert risk.imf >= 1 / account.leverage_limit


# -------------------------------------------------------------------------- timing


def _many_accounts(count: int) -> list[tuple[AccountRiskInput, MarketRiskData]]:
    mkt = market(SOL="150")
    out = []
    for i in range(count):
        q = D(i % 200 - 100) / D(4) or D("0.25")  # -25 .. 24.75 SOL, both sides
        big = i % 10 == 0  # every tenth account above the sqrt kink
        size = q * 40 if big else q
        out.append(
            (
                AccountRiskInput(
                    balances=(usdc(str(200 + i % 5000)), AssetBalance("SOL", D(i % 7))),
                    positions=(
                        PerpPosition(
                            SOL_PERP, size, size * D("150"), D("150"), open_bid_quantity=D(i % 3)
                        ),
                        perp(BTC_PERP, "0.01", "60000", "61000"),
                    ),
                    leverage_limit=D(20),
                ),
                mkt,
            )
        )
    return out


def test_lean_path_timing_10k_accounts() -> None:
    cases = _many_accounts(10_000)
    prepared = [prepare_for_perp(a, m, SOL_PERP, key=i) for i, (a, m) in enumerate(cases)]
    mark = D("140.25")
    revalue_ns: list[int] = []
    candidates_ns: list[int] = []
    for _ in range(3):
        started = time.perf_counter_ns()
        results = revalue_all(prepared, mark)
        revalue_ns.append(time.perf_counter_ns() - started)
        started = time.perf_counter_ns()
        keys = liquidation_candidates(prepared, mark)
        candidates_ns.append(time.perf_counter_ns() - started)
    assert keys == [r.key for r in results if r.should_liquidate]
    # spot check against the clear path
    for i in range(0, 10_000, 997):
        account, mkt = cases[i]
        full = compute_account_risk(at_mark(account, SOL_PERP, mark), mkt)
        assert results[i].should_liquidate == full.should_liquidate
        assert results[i].net_equity == full.net_equity
    print(
        f"\nlean path, 10,000 accounts: revalue_all {min(revalue_ns) // 1000} us, "
        f"liquidation_candidates {min(candidates_ns) // 1000} us ({len(keys)} to liquidate)"
    )
