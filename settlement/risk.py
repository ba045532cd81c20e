"""Account risk: collateral, net equity, exposure, margin fractions, liquidation prices.

Pure module: standard library only, every quantity a ``Decimal`` (never a float).  The
same numbers serve the pre-trade check, the UI, ``/api/v1/capital/collateral`` and the
liquidation loop (DESIGN.md "Risk and settlement").  Formulas follow SPEC.md "Margin":

* Collateral value = sum of positive balance x index price x w(n).
* Borrowed liabilities = sum of |negative balance| x index price.
* Net equity = collateral value + unrealized PnL + unsettled equity - liabilities.
* Position notional = |net quantity| x mark.  Net exposure counts risk-increasing open
  orders: net exposure quantity = position + the worse side of the open orders.
* Position IMF = max(base, factor x sqrt(notional)), likewise MMF, evaluated on the net
  exposure notional.  Perps: IMF 0.02 / 0.0000935, MMF 0.0125 / 0.0000561.  Borrows:
  IMF base 0.10 (USDC) or 0.20 (others), MMF half of it, same sqrt rule on the borrowed
  notional.
* Account IMF and MMF = notional-weighted averages over positions and borrows; the
  account's leverageLimit raises IMF to at least 1 / leverageLimit.
* Margin fraction MF = net equity / total exposure notional (None with no exposure).
* A risk-increasing order, borrow or withdrawal is refused when the account would end
  with MF < IMF; liquidation starts when MF < MMF.

Two entry points:

* ``compute_account_risk`` - the clear, complete per-account valuation (rows for the
  API / UI, every intermediate).
* The lean path for the liquidation loop: ``prepare_for_perp`` / ``prepare_for_asset``
  fold everything that doesn't depend on one price into a few numbers once, then
  ``revalue`` / ``revalue_all`` / ``liquidation_candidates`` re-apply a new mark with a
  handful of Decimal operations per account (a square root only when a position is above
  its sqrt kink).

Precision: all arithmetic runs in ``RISK_CONTEXT`` (34 significant digits,
ROUND_HALF_EVEN, traps on invalid operation / division by zero / overflow).  Results are
not quantized: they are valuations, not ledger amounts; callers format them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "ASSET_BORROW_IMF",
    "ASSET_BORROW_MMF",
    "DEFAULT_ASSET_PARAMS",
    "PERP_IMF",
    "PERP_MMF",
    "QUOTE_ASSET",
    "RISK_CONTEXT",
    "USDC_BORROW_IMF",
    "USDC_BORROW_MMF",
    "AccountRisk",
    "AccountRiskInput",
    "AssetBalance",
    "AssetRiskParams",
    "BorrowRisk",
    "CollateralRow",
    "HaircutFunction",
    "MarketRiskData",
    "MarkRisk",
    "PerpPosition",
    "PositionRisk",
    "PreparedAccount",
    "SqrtFunction",
    "bankruptcy_price",
    "compute_account_risk",
    "estimated_liquidation_price",
    "liquidation_candidates",
    "liquidation_price",
    "prepare_for_asset",
    "prepare_for_perp",
    "revalue",
    "revalue_all",
]

RISK_CONTEXT = Context(
    prec=34,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
QUOTE_ASSET = "USDC"

_ZERO = Decimal(0)
_ONE = Decimal(1)
_ONE_POINT_FIVE = Decimal("1.5")
_INVERSE_SQRT_NUMERATOR = Decimal("1.1")


# ----------------------------------------------------------------------- functions


@dataclass(frozen=True, slots=True)
class SqrtFunction:
    """PositionImfFunction of type ``sqrt``: ``f(notional) = max(base, factor x sqrt(notional))``.

    The sqrt term binds above ``kink_notional = (base / factor)^2``: for the perp IMF
    (0.02, 0.0000935) that is (0.02 / 0.0000935)^2 = 45,754.9 USDC of notional.
    """

    base: Decimal
    factor: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.base < _ZERO or self.factor < _ZERO:
            raise ValueError("base and factor must be >= 0")

    @property
    def kink_notional(self) -> Decimal | None:
        """Notional above which ``factor x sqrt(notional)`` exceeds ``base`` (None: never)."""
        if self.factor == _ZERO:
            return None
        with localcontext(RISK_CONTEXT):
            ratio = self.base / self.factor
            return ratio * ratio

    def __call__(self, notional: Decimal) -> Decimal:
        if self.factor == _ZERO or notional <= _ZERO:
            return self.base
        with localcontext(RISK_CONTEXT):
            scaled = self.factor * notional.sqrt()
        return scaled if scaled > self.base else self.base


PERP_IMF = SqrtFunction(Decimal("0.02"), Decimal("0.0000935"))
PERP_MMF = SqrtFunction(Decimal("0.0125"), Decimal("0.0000561"))
# Borrows (SPEC.md: base 0.10 USDC / 0.20 others, MMF half, "same sqrt rule").  SPEC.md
# gives no factor: we reuse the perp IMF factor 0.0000935 for the borrow IMF and halve it
# for the MMF, so that the borrow MMF is exactly half the borrow IMF at every size.  The
# sqrt rule then binds above (0.10 / 0.0000935)^2 = 1.14M USDC borrowed for USDC and
# (0.20 / 0.0000935)^2 = 4.58M USDC of notional for the other assets.
USDC_BORROW_IMF = SqrtFunction(Decimal("0.10"), Decimal("0.0000935"))
USDC_BORROW_MMF = SqrtFunction(Decimal("0.05"), Decimal("0.00004675"))
ASSET_BORROW_IMF = SqrtFunction(Decimal("0.20"), Decimal("0.0000935"))
ASSET_BORROW_MMF = SqrtFunction(Decimal("0.10"), Decimal("0.00004675"))


@dataclass(frozen=True, slots=True)
class HaircutFunction:
    """Collateral weight as a function of the quantity held (CollateralFunction).

    * ``identity``: ``w(n) = weight``.
    * ``inverseSqrt``: ``w(n) = min(weight, 1.1 / (1 + penalty x sqrt(n)))``, n = token
      quantity held (SPEC.md "Assets and markets"; ``penalty`` is the contract's
      ``positiveCurvePenalty``).
    """

    weight: Decimal
    kind: str = "identity"
    positive_curve_penalty: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.kind not in ("identity", "inverseSqrt"):
            raise ValueError(f"unknown haircut kind {self.kind!r}")
        if not (_ZERO <= self.weight <= _ONE) or self.positive_curve_penalty < _ZERO:
            raise ValueError("weight must be in [0, 1] and penalty >= 0")

    def __call__(self, quantity: Decimal) -> Decimal:
        if self.kind == "identity" or quantity <= _ZERO or self.positive_curve_penalty == _ZERO:
            return self.weight
        with localcontext(RISK_CONTEXT):
            curve = _INVERSE_SQRT_NUMERATOR / (_ONE + self.positive_curve_penalty * quantity.sqrt())
        return curve if curve < self.weight else self.weight


@dataclass(frozen=True, slots=True)
class AssetRiskParams:
    """Per-asset risk settings (CollateralSummary): haircut and borrow IMF / MMF."""

    symbol: str
    haircut: HaircutFunction
    borrow_imf: SqrtFunction
    borrow_mmf: SqrtFunction


def _asset(symbol: str, weight: str, penalty: str | None) -> AssetRiskParams:
    haircut = (
        HaircutFunction(Decimal(weight))
        if penalty is None
        else HaircutFunction(Decimal(weight), "inverseSqrt", Decimal(penalty))
    )
    usdc = symbol == QUOTE_ASSET
    return AssetRiskParams(
        symbol=symbol,
        haircut=haircut,
        borrow_imf=USDC_BORROW_IMF if usdc else ASSET_BORROW_IMF,
        borrow_mmf=USDC_BORROW_MMF if usdc else ASSET_BORROW_MMF,
    )


#: SPEC.md table: USDC 1.00 / USDT 0.95 identity; SOL 0.85, BTC 0.90, ETH 0.90
#: inverseSqrt with penalty SOL 0.002, BTC 0.05, ETH 0.01.
DEFAULT_ASSET_PARAMS: Mapping[str, AssetRiskParams] = MappingProxyType(
    {
        "USDC": _asset("USDC", "1.00", None),
        "USDT": _asset("USDT", "0.95", None),
        "SOL": _asset("SOL", "0.85", "0.002"),
        "BTC": _asset("BTC", "0.90", "0.05"),
        "ETH": _asset("ETH", "0.90", "0.01"),
    }
)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """One asset of the account.

    ``quantity`` is the signed net total: available + locked in orders + lent, minus
    borrowed (negative = a borrow).  ``lend_quantity`` and ``open_order_quantity`` are the
    parts of a positive quantity that are lent / locked (reported in the collateral row,
    already inside ``quantity``).  ``open_borrow_quantity`` is what open spot-margin orders
    would borrow in the worst case: it counts as borrow exposure (IMF / MMF) but not as a
    liability until it is actually borrowed.
    """

    symbol: str
    quantity: Decimal
    lend_quantity: Decimal = _ZERO
    open_order_quantity: Decimal = _ZERO
    open_borrow_quantity: Decimal = _ZERO


def _worst_exposure(net_quantity: Decimal, bid: Decimal, ask: Decimal) -> Decimal:
    long_side = net_quantity + bid
    short_side = net_quantity - ask
    return long_side if abs(long_side) >= abs(short_side) else short_side


@dataclass(frozen=True, slots=True)
class PerpPosition:
    """A perp position (FuturePositionWithMargin inputs), linear and USDC-settled.

    ``net_quantity`` positive if long, negative if short; ``net_cost`` = sum of
    price x quantity of the fills that built it (so entry = net_cost / net_quantity).
    ``open_bid_quantity`` / ``open_ask_quantity``: quantity of the account's open orders
    in this market on each side; the worse side increases exposure.  A market with open
    orders but no position is a PerpPosition with ``net_quantity = 0``.
    """

    symbol: str
    net_quantity: Decimal
    net_cost: Decimal
    mark_price: Decimal
    imf_function: SqrtFunction = PERP_IMF
    mmf_function: SqrtFunction = PERP_MMF
    open_bid_quantity: Decimal = _ZERO
    open_ask_quantity: Decimal = _ZERO

    @property
    def entry_price(self) -> Decimal:
        """Entry price = net_cost / net_quantity (0 for a flat position)."""
        if self.net_quantity == _ZERO:
            return _ZERO
        with localcontext(RISK_CONTEXT):
            return self.net_cost / self.net_quantity

    @property
    def net_exposure_quantity(self) -> Decimal:
        """Net exposure quantity = position + open orders increasing risk (worst side):
        ``net + bids`` or ``net - asks``, whichever is larger in absolute value."""
        return _worst_exposure(self.net_quantity, self.open_bid_quantity, self.open_ask_quantity)


@dataclass(frozen=True, slots=True)
class AccountRiskInput:
    """Everything account-specific that risk needs.  ``leverage_limit`` None = no limit;
    ``unsettled_equity`` is the contract's "unsettled claim on the liquidity fund"."""

    balances: tuple[AssetBalance, ...] = ()
    positions: tuple[PerpPosition, ...] = ()
    leverage_limit: Decimal | None = None
    unsettled_equity: Decimal = _ZERO

    def __post_init__(self) -> None:
        if self.leverage_limit is not None and self.leverage_limit <= _ZERO:
            raise ValueError("leverage_limit must be positive")


@dataclass(frozen=True)
class MarketRiskData:
    """Shared market state: index price per spot asset (in USDC; USDC itself is 1 when
    absent) and the per-asset risk settings."""

    index_prices: Mapping[str, Decimal]
    assets: Mapping[str, AssetRiskParams] = field(default_factory=lambda: DEFAULT_ASSET_PARAMS)

    def index_price(self, symbol: str) -> Decimal:
        price = self.index_prices.get(symbol)
        if price is None:
            if symbol == QUOTE_ASSET:
                return _ONE
            raise KeyError(f"no index price for {symbol}")
        return price


# -------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class CollateralRow:
    """One row of the Collateral schema.  ``balance_notional = index x quantity``;
    ``collateral_value = balance_notional x collateral_weight`` for a positive quantity,
    0 for a borrow (its cost is in ``AccountRisk.liabilities``)."""

    symbol: str
    asset_mark_price: Decimal
    total_quantity: Decimal
    balance_notional: Decimal
    collateral_weight: Decimal
    collateral_value: Decimal
    lend_quantity: Decimal
    open_order_quantity: Decimal
    available_quantity: Decimal


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """Risk of one perp position (FuturePositionWithMargin fields).

    ``notional = |net quantity| x mark``; ``pnl_unrealized = net quantity x (mark - entry)
    = net quantity x mark - net cost``; ``net_exposure_notional = |net exposure quantity|
    x mark``; ``imf`` / ``mmf`` = the sqrt functions at the net exposure notional."""

    symbol: str
    net_quantity: Decimal
    net_cost: Decimal
    entry_price: Decimal
    mark_price: Decimal
    notional: Decimal
    pnl_unrealized: Decimal
    net_exposure_quantity: Decimal
    net_exposure_notional: Decimal
    imf: Decimal
    mmf: Decimal


@dataclass(frozen=True, slots=True)
class BorrowRisk:
    """Risk of one borrow (BorrowLendPositionWithMargin fields; lends have no exposure).
    ``net_exposure_quantity = -(borrowed + open borrow)``, notional at the index price."""

    symbol: str
    net_quantity: Decimal
    mark_price: Decimal
    net_exposure_quantity: Decimal
    net_exposure_notional: Decimal
    imf: Decimal
    mmf: Decimal


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """Valuation of one account (MarginAccountSummary and more).

    * ``assets_value``: sum of positive balance notionals (pre-haircut).
    * ``collateral_value``: sum of positive balance x index x w(n).
    * ``liabilities``: sum of |negative balance| x index (borrowLiability).
    * ``net_equity = collateral_value + pnl_unrealized + unsettled_equity - liabilities``.
    * ``total_exposure_notional``: sum of net exposure notionals of perps and borrows;
      ``futures_exposure_notional`` the perp part (netExposureFutures).
    * ``initial_margin = sum(notional x IMF)``, ``maintenance_margin = sum(notional x MMF)``.
    * ``imf = max(initial_margin / total exposure, 1 / leverageLimit)``;
      ``mmf = maintenance_margin / total exposure`` (with no exposure: 1/leverageLimit or
      0, and 0).
    * ``margin_fraction = net_equity / total exposure`` or None with no exposure.
    * ``net_equity_locked = total exposure x imf`` (= sum(notional x IMF) unless the
      leverage limit binds); ``net_equity_available = net_equity - net_equity_locked``.
    """

    collateral: tuple[CollateralRow, ...]
    positions: tuple[PositionRisk, ...]
    borrows: tuple[BorrowRisk, ...]
    assets_value: Decimal
    collateral_value: Decimal
    liabilities: Decimal
    pnl_unrealized: Decimal
    unsettled_equity: Decimal
    net_equity: Decimal
    futures_exposure_notional: Decimal
    total_exposure_notional: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    imf: Decimal
    mmf: Decimal
    margin_fraction: Decimal | None
    net_equity_locked: Decimal
    net_equity_available: Decimal

    @property
    def can_increase_risk(self) -> bool:
        """MF >= IMF, or no exposure.  Evaluate it on the account *after* the order,
        borrow or withdrawal: False means INSUFFICIENT_MARGIN.  Computed as
        ``net_equity >= net_equity_locked`` (the same inequality times the exposure)."""
        return self.total_exposure_notional == _ZERO or self.net_equity >= self.net_equity_locked

    @property
    def should_liquidate(self) -> bool:
        """MF < MMF (SPEC.md "Liquidation starts when MF < MMF"); never with no exposure.
        Computed as ``net_equity < maintenance_margin``."""
        return self.total_exposure_notional > _ZERO and self.net_equity < self.maintenance_margin


# ----------------------------------------------------------------------- clear path


def _leverage_locked(total: Decimal, initial: Decimal, leverage_limit: Decimal | None) -> Decimal:
    if leverage_limit is None:
        return initial
    floor = total / leverage_limit
    return floor if floor > initial else initial


def compute_account_risk(account: AccountRiskInput, market: MarketRiskData) -> AccountRisk:
    """Value one account at the given prices (all formulas: see the module and
    ``AccountRisk`` docstrings).  Perps are valued at their ``mark_price``, spot assets at
    their index price.  Every balance's asset must be in ``market.assets`` and (except
    USDC) in ``market.index_prices``, else ``KeyError``."""
    with localcontext(RISK_CONTEXT):
        rows: list[CollateralRow] = []
        borrows: list[BorrowRisk] = []
        assets_value = collateral_value = liabilities = _ZERO
        total = initial = maintenance = _ZERO
        for bal in account.balances:
            params = market.assets[bal.symbol]
            price = market.index_price(bal.symbol)
            qty = bal.quantity
            notional = qty * price
            weight = params.haircut(qty)
            if qty > _ZERO:
                value = notional * weight
                assets_value += notional
                collateral_value += value
                available = qty - bal.lend_quantity - bal.open_order_quantity
            else:
                value = _ZERO
                liabilities -= notional
                available = _ZERO
            rows.append(
                CollateralRow(
                    symbol=bal.symbol,
                    asset_mark_price=price,
                    total_quantity=qty,
                    balance_notional=notional,
                    collateral_weight=weight,
                    collateral_value=value,
                    lend_quantity=bal.lend_quantity,
                    open_order_quantity=bal.open_order_quantity,
                    available_quantity=available,
                )
            )
            exposure_qty = (-qty if qty < _ZERO else _ZERO) + bal.open_borrow_quantity
            if exposure_qty > _ZERO:
                exposure = exposure_qty * price
                imf = params.borrow_imf(exposure)
                mmf = params.borrow_mmf(exposure)
                total += exposure
                initial += exposure * imf
                maintenance += exposure * mmf
                borrows.append(
                    BorrowRisk(bal.symbol, qty, price, -exposure_qty, exposure, imf, mmf)
                )

        positions: list[PositionRisk] = []
        upnl = futures = _ZERO
        for pos in account.positions:
            mark = pos.mark_price
            pnl = pos.net_quantity * mark - pos.net_cost
            exposure_qty = pos.net_exposure_quantity
            exposure = abs(exposure_qty) * mark
            imf = pos.imf_function(exposure)
            mmf = pos.mmf_function(exposure)
            upnl += pnl
            futures += exposure
            initial += exposure * imf
            maintenance += exposure * mmf
            positions.append(
                PositionRisk(
                    symbol=pos.symbol,
                    net_quantity=pos.net_quantity,
                    net_cost=pos.net_cost,
                    entry_price=pos.entry_price,
                    mark_price=mark,
                    notional=abs(pos.net_quantity) * mark,
                    pnl_unrealized=pnl,
                    net_exposure_quantity=exposure_qty,
                    net_exposure_notional=exposure,
                    imf=imf,
                    mmf=mmf,
                )
            )
        total += futures
        net_equity = collateral_value + upnl + account.unsettled_equity - liabilities
        locked = _leverage_locked(total, initial, account.leverage_limit)
        if total > _ZERO:
            account_imf = locked / total
            account_mmf = maintenance / total
            margin_fraction: Decimal | None = net_equity / total
        else:
            limit = account.leverage_limit
            account_imf = _ONE / limit if limit is not None else _ZERO
            account_mmf = _ZERO
            margin_fraction = None
        return AccountRisk(
            collateral=tuple(rows),
            positions=tuple(positions),
            borrows=tuple(borrows),
            assets_value=assets_value,
            collateral_value=collateral_value,
            liabilities=liabilities,
            pnl_unrealized=upnl,
            unsettled_equity=account.unsettled_equity,
            net_equity=net_equity,
            futures_exposure_notional=futures,
            total_exposure_notional=total,
            initial_margin=initial,
            maintenance_margin=maintenance,
            imf=account_imf,
            mmf=account_mmf,
            margin_fraction=margin_fraction,
            net_equity_locked=locked,
            net_equity_available=net_equity - locked,
        )


# ------------------------------------------------------------------------ lean path


@dataclass(frozen=True, slots=True)
class PreparedAccount:
    """An account folded around one moving price ``m`` (a perp mark or an asset index).

    With every other price static, the account at price ``m`` is::

        net_equity(m)  = base_equity + slope x m
        exposure(m)    = exposure_rest + e x m                  (e = exposure_quantity)
        initial(m)     = initial_rest + e x m x imf(e x m)
        maintenance(m) = maintenance_rest + e x m x mmf(e x m)

    For a perp: ``slope = net quantity``, ``base_equity = net equity without this
    position's PnL - net cost``, ``e = |net exposure quantity|``.  For a spot asset:
    ``slope = quantity x w(quantity)`` when held (collateral) or ``quantity`` (< 0) when
    borrowed (liability), ``e = borrowed + open borrow``.
    """

    key: Hashable
    symbol: str
    base_equity: Decimal
    slope: Decimal
    exposure_quantity: Decimal
    exposure_rest: Decimal
    initial_rest: Decimal
    maintenance_rest: Decimal
    imf_function: SqrtFunction
    mmf_function: SqrtFunction
    imf_kink: Decimal | None
    mmf_kink: Decimal | None
    leverage_limit: Decimal | None


class MarkRisk(NamedTuple):
    """The margin numbers of a ``PreparedAccount`` at one price (see ``AccountRisk``).

    A NamedTuple rather than a frozen dataclass: built 10,000 times per mark update, and
    a tuple is several times cheaper to construct."""

    key: Hashable
    net_equity: Decimal
    total_exposure_notional: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    net_equity_locked: Decimal

    @property
    def margin_fraction(self) -> Decimal | None:
        if self.total_exposure_notional == _ZERO:
            return None
        with localcontext(RISK_CONTEXT):
            return self.net_equity / self.total_exposure_notional

    @property
    def mmf(self) -> Decimal:
        if self.total_exposure_notional == _ZERO:
            return _ZERO
        with localcontext(RISK_CONTEXT):
            return self.maintenance_margin / self.total_exposure_notional

    @property
    def imf(self) -> Decimal:
        if self.total_exposure_notional == _ZERO:
            return _ZERO
        with localcontext(RISK_CONTEXT):
            return self.net_equity_locked / self.total_exposure_notional

    @property
    def can_increase_risk(self) -> bool:
        return self.total_exposure_notional == _ZERO or self.net_equity >= self.net_equity_locked

    @property
    def should_liquidate(self) -> bool:
        return self.total_exposure_notional > _ZERO and self.net_equity < self.maintenance_margin


def _prepared(
    key: Hashable,
    symbol: str,
    account: AccountRiskInput,
    base_equity: Decimal,
    slope: Decimal,
    exposure_quantity: Decimal,
    rest: tuple[Decimal, Decimal, Decimal],
    imf_function: SqrtFunction,
    mmf_function: SqrtFunction,
) -> PreparedAccount:
    return PreparedAccount(
        key=key,
        symbol=symbol,
        base_equity=base_equity,
        slope=slope,
        exposure_quantity=exposure_quantity,
        exposure_rest=rest[0],
        initial_rest=rest[1],
        maintenance_rest=rest[2],
        imf_function=imf_function,
        mmf_function=mmf_function,
        imf_kink=imf_function.kink_notional,
        mmf_kink=mmf_function.kink_notional,
        leverage_limit=account.leverage_limit,
    )


def prepare_for_perp(
    account: AccountRiskInput, market: MarketRiskData, symbol: str, key: Hashable = None
) -> PreparedAccount:
    """Fold ``account`` around the mark of perp ``symbol`` (no position there: slope 0)."""
    risk = compute_account_risk(account, market)
    with localcontext(RISK_CONTEXT):
        for pos, row in zip(account.positions, risk.positions, strict=True):
            if pos.symbol == symbol:
                rest = (
                    risk.total_exposure_notional - row.net_exposure_notional,
                    risk.initial_margin - row.net_exposure_notional * row.imf,
                    risk.maintenance_margin - row.net_exposure_notional * row.mmf,
                )
                base = risk.net_equity - row.pnl_unrealized - pos.net_cost
                exposure_qty = abs(row.net_exposure_quantity)
                return _prepared(
                    key,
                    symbol,
                    account,
                    base,
                    pos.net_quantity,
                    exposure_qty,
                    rest,
                    pos.imf_function,
                    pos.mmf_function,
                )
    rest = (risk.total_exposure_notional, risk.initial_margin, risk.maintenance_margin)
    return _prepared(key, symbol, account, risk.net_equity, _ZERO, _ZERO, rest, PERP_IMF, PERP_MMF)


def prepare_for_asset(
    account: AccountRiskInput, market: MarketRiskData, asset: str, key: Hashable = None
) -> PreparedAccount:
    """Fold ``account`` around the index price of spot ``asset``.  The haircut w(n)
    depends on the quantity only, so collateral value is linear in the price."""
    risk = compute_account_risk(account, market)
    params = market.assets[asset]
    with localcontext(RISK_CONTEXT):
        for bal, row in zip(account.balances, risk.collateral, strict=True):
            if bal.symbol != asset:
                continue
            borrow = next((b for b in risk.borrows if b.symbol == asset), None)
            if borrow is None:
                rest = (risk.total_exposure_notional, risk.initial_margin, risk.maintenance_margin)
                exposure_qty = _ZERO
            else:
                n = borrow.net_exposure_notional
                rest = (
                    risk.total_exposure_notional - n,
                    risk.initial_margin - n * borrow.imf,
                    risk.maintenance_margin - n * borrow.mmf,
                )
                exposure_qty = -borrow.net_exposure_quantity
            if bal.quantity > _ZERO:
                slope = bal.quantity * row.collateral_weight
                base = risk.net_equity - row.collateral_value
            else:
                slope = bal.quantity
                base = risk.net_equity - row.balance_notional  # adds the liability back
            return _prepared(
                key,
                asset,
                account,
                base,
                slope,
                exposure_qty,
                rest,
                params.borrow_imf,
                params.borrow_mmf,
            )
    rest = (risk.total_exposure_notional, risk.initial_margin, risk.maintenance_margin)
    return _prepared(
        key,
        asset,
        account,
        risk.net_equity,
        _ZERO,
        _ZERO,
        rest,
        params.borrow_imf,
        params.borrow_mmf,
    )


def _revalue(p: PreparedAccount, mark: Decimal) -> MarkRisk:
    # Caller holds RISK_CONTEXT.
    n = p.exposure_quantity * mark
    total = p.exposure_rest + n
    initial = p.initial_rest
    maintenance = p.maintenance_rest
    if n:
        root = None
        fn = p.imf_function
        if p.imf_kink is not None and n > p.imf_kink:
            root = n.sqrt()
            initial += n * (fn.factor * root)
        else:
            initial += n * fn.base
        fn = p.mmf_function
        if p.mmf_kink is not None and n > p.mmf_kink:
            if root is None:
                root = n.sqrt()
            maintenance += n * (fn.factor * root)
        else:
            maintenance += n * fn.base
    locked = initial
    if p.leverage_limit is not None:
        floor = total / p.leverage_limit
        if floor > locked:
            locked = floor
    return MarkRisk(p.key, p.base_equity + p.slope * mark, total, initial, maintenance, locked)


def revalue(prepared: PreparedAccount, mark: Decimal) -> MarkRisk:
    """Margin numbers of a prepared account at price ``mark`` (formulas:
    ``PreparedAccount``).  Equal to ``compute_account_risk`` with that price."""
    with localcontext(RISK_CONTEXT):
        return _revalue(prepared, mark)


def revalue_all(prepared: Iterable[PreparedAccount], mark: Decimal) -> list[MarkRisk]:
    """``revalue`` for many accounts under one Decimal context."""
    with localcontext(RISK_CONTEXT):
        return [_revalue(p, mark) for p in prepared]


def liquidation_candidates(prepared: Iterable[PreparedAccount], mark: Decimal) -> list[Hashable]:
    """Keys of the prepared accounts with MF < MMF at ``mark`` - the leanest loop: net
    equity < maintenance margin, with exposure, no result objects, no division."""
    out: list[Hashable] = []
    with localcontext(RISK_CONTEXT):
        for p in prepared:
            n = p.exposure_quantity * mark
            maintenance = p.maintenance_rest
            if n:
                if p.mmf_kink is not None and n > p.mmf_kink:
                    maintenance += n * (p.mmf_function.factor * n.sqrt())
                else:
                    maintenance += n * p.mmf_function.base
            elif p.exposure_rest == _ZERO:
                continue
            if p.base_equity + p.slope * mark < maintenance:
                out.append(p.key)
    return out


# ------------------------------------------------------------- liquidation prices


def _root(
    g: Callable[[Decimal], Decimal],
    dg: Callable[[Decimal], Decimal],
    lo: Decimal,
    hi: Decimal,
    start: Decimal,
) -> Decimal:
    """Root of a concave g with a sign change on [lo, hi]: Newton from the unhealthy end
    (monotone for concave g), bisection whenever a step leaves the bracket."""
    g_lo_negative = g(lo) < _ZERO
    m = start
    tolerance = Decimal("1e-26")  # relative; g itself is only good to ~34 digits
    for _ in range(200):
        gm = g(m)
        if gm == _ZERO:
            return m
        if (gm < _ZERO) == g_lo_negative:
            lo = m
        else:
            hi = m
        slope = dg(m)
        nxt = m - gm / slope if slope != _ZERO else (lo + hi) / 2
        if abs(nxt - m) <= tolerance * abs(m):
            return nxt
        if not (lo < nxt < hi):
            nxt = (lo + hi) / 2
            if nxt in (lo, hi):
                return nxt
        m = nxt
    return m


def liquidation_price(prepared: PreparedAccount) -> Decimal | None:
    """Estimated liquidation price: the price at which MF = MMF, all other prices static
    (liquidation page: "assuming other positions/collateral/prices static, no funding").

    MF < MMF  <=>  g(m) = base_equity + slope x m - maintenance_rest
                          - e x m x mmf(e x m) < 0
    g is concave (linear minus the convex requirement), so the healthy marks form one
    interval [m1, m2].  A long (slope > 0, collateral) is liquidated by the price
    falling: the answer is m1, or None when even a price of 0 is healthy.  A short
    (slope < 0, borrow) by the price rising: m2, or None when it is healthy nowhere.
    (A long's upper root exists only because MMF grows like sqrt(notional) without bound;
    it is ignored.)  Also None for slope 0 and when no price is healthy for a long.
    """
    k = prepared.slope
    if k == _ZERO:
        return None
    fn = prepared.mmf_function
    e = prepared.exposure_quantity
    with localcontext(RISK_CONTEXT):
        a = prepared.base_equity - prepared.maintenance_rest
        b, f = fn.base, fn.factor
        kink = None if f == _ZERO or e == _ZERO else (b / f) ** 2 / e
        c = f * e * e.sqrt() if kink is not None else _ZERO

        def g(m: Decimal) -> Decimal:
            n = e * m
            return a + k * m - n * fn(n)

        def dg(m: Decimal) -> Decimal:
            if kink is not None and m > kink:
                return k - _ONE_POINT_FIVE * c * m.sqrt()
            return k - b * e

        linear_slope = k - b * e
        if k > _ZERO:
            if a >= _ZERO:
                return None
            if linear_slope > _ZERO:
                m = -a / linear_slope
                if kink is None or m <= kink:
                    return m
            if kink is None:
                return None
            peak = (k / (_ONE_POINT_FIVE * c)) ** 2
            if peak <= kink or g(peak) < _ZERO:
                return None
            return _root(g, dg, kink, peak, kink)
        if a <= _ZERO:
            return None
        m = a / -linear_slope
        if kink is None or m <= kink:
            return m
        # Past the kink the requirement only grows faster than on the linear piece, so
        # g(m) <= 0 at the linear root m: [kink, m] brackets the crossing.
        if g(m) == _ZERO:
            return m
        return _root(g, dg, kink, m, m)


def bankruptcy_price(prepared: PreparedAccount) -> Decimal | None:
    """Price at which net equity = 0, all other prices static:
    ``base_equity + slope x m = 0`` -> ``m = -base_equity / slope``; None when flat or
    when no positive price makes equity zero."""
    if prepared.slope == _ZERO:
        return None
    with localcontext(RISK_CONTEXT):
        m = -prepared.base_equity / prepared.slope
    return m if m > _ZERO else None


def estimated_liquidation_price(
    account: AccountRiskInput, market: MarketRiskData, symbol: str
) -> Decimal | None:
    """``liquidation_price`` of the perp position ``symbol`` (estLiquidationPrice)."""
    return liquidation_price(prepare_for_perp(account, market, symbol))
