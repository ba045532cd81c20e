"""Liquidation of borrow positions (SPEC.md "Liquidation": close positions and repay
borrows), one step per liquidation run, next to the perp steps of
exchange.engine.liquidation.

While an account is liquidating, what it holds of an asset it borrows repays the borrow
when the batch is written (lending.services.reconcile, source Liquidation). Per run:

* a USDC borrow: collateral (largest value first) is sold on its USDC book by IOC system
  orders LiquidatePositionOnBook for 10% of the borrow, at no worse than the asset's
  bankruptcy price (where the account's equity, valued without haircuts, is zero);
* a borrow of another asset: it is bought back on its USDC book by an IOC bid for 10% of
  the borrow (at least one lot) at no more than its bankruptcy price, collateral being
  sold for the USDC first when the account lacks it;
* each fill pays 1% of its notional to the insurance fund;
* below autoCloseFactor x MMF, or when the book absorbs nothing (and no perp position is
  being closed on the book), the backstop: the insurance fund buys the collateral at its
  bankruptcy price (an off-book trade, LiquidatePositionOnBackstop), as far as its USDC
  goes.

An account with nothing left to sell whose borrows exceed its equity has bad debt: the
insurance fund repays its USDC borrow when it can (source LiquidationBackstop).
"""

from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.db import connection

from accounts.models import Account, Balance, LedgerEntry
from accounts.services import EntrySpec, post_entry
from exchange.engine import conversion, liquidation
from lending import services as lending
from lending.models import Movement
from settlement import risk
from trading.models import Order

USDC = "USDC"
BOOK = "LiquidatePositionOnBook"
BACKSTOP = "LiquidatePositionOnBackstop"
ZERO = Decimal(0)


def borrowers() -> set[int]:
    """Accounts with a borrow (a negative position in their lending account)."""
    rows = Balance.objects.filter(account__kind=Account.Kind.LENDING).exclude(amount=0)
    if connection.vendor == "postgresql":  # exact decimals on SQLite: compare in Python
        rows = rows.filter(amount__lt=0)
    return {
        owner for owner, amount in rows.values_list("account__owner_id", "amount") if amount < 0
    }


def sellable(core, account_risk: risk.AccountRisk) -> list[str]:  # noqa: ANN001
    """Collateral the liquidator can sell here: held assets other than USDC with a USDC
    book on this engine."""
    return [
        row.symbol
        for row in account_risk.collateral
        if row.symbol != USDC and row.total_quantity > 0 and f"{row.symbol}_USDC" in core.markets
    ]


def bankruptcy_prices(account_input: risk.AccountRiskInput, prices: dict) -> dict[str, Decimal]:
    """Per asset of the account: the price at which its equity, valued without haircuts,
    is zero with every other price static (the liquidator's limit on the book and the
    backstop's price)."""
    market = risk.MarketRiskData(index_prices=prices)
    flat = risk.MarketRiskData(
        index_prices=prices,
        assets={
            s: replace(p, haircut=risk.HaircutFunction(Decimal(1)))
            for s, p in market.assets.items()
        },
    )
    out = {}
    for balance in account_input.balances:
        if balance.quantity:
            price = risk.bankruptcy_price(
                risk.prepare_for_asset(account_input, flat, balance.symbol)
            )
            if price is not None:
                out[balance.symbol] = price
    return out


def step(  # noqa: PLR0913
    core,  # noqa: ANN001
    batch,  # noqa: ANN001
    account: Account,
    result: risk.AccountRisk,
    account_input: risk.AccountRiskInput,
    prices: dict,
    deep: bool,
    closing_perps: bool,
) -> tuple[int, int]:
    """One liquidation run over the account's borrows: (book steps, backstops). Deep
    under its MMF the backstop goes first (the book when the fund cannot pay); else the
    book, and the backstop when the book absorbs nothing - unless perp positions are
    being closed on the book: the borrow waits for them."""
    batch.touched.add(account.pk)  # reconcile repays borrows from what it holds
    bankrupt = bankruptcy_prices(account_input, prices)
    steps = backstops = 0
    for borrow in sorted(result.borrows, key=lambda b: (-b.net_exposure_notional, b.symbol)):
        owed = -borrow.net_quantity
        if owed <= 0:
            continue
        value = owed * prices.get(borrow.symbol, Decimal(1))
        raised = _backstop(core, batch, account, sellable(core, result), bankrupt) if deep else 0
        backstops += raised > 0
        if raised < value and _on_book(core, batch, account, borrow.symbol, owed, bankrupt, prices):
            steps += 1
        elif not deep and not closing_perps:
            backstops += _backstop(core, batch, account, sellable(core, result), bankrupt) > 0
    return steps, backstops


def _on_book(  # noqa: PLR0913
    core,  # noqa: ANN001
    batch,  # noqa: ANN001
    account: Account,
    asset: str,
    owed: Decimal,
    bankrupt: dict,
    prices: dict,
) -> bool:
    """One step of 10% of a borrow on the book."""
    if asset == USDC:
        return _sell_collateral(core, batch, account, owed * liquidation.STEP, bankrupt)
    return _buy_back(core, batch, account, asset, owed, bankrupt, prices)


def _limit(bankrupt: dict):  # noqa: ANN202
    def floor(mb, index: Decimal) -> Decimal:  # noqa: ANN001
        return bankrupt.get(mb.market.base_id) or index * mb.market.min_impact_multiplier

    return floor


def _sell_collateral(core, batch, account: Account, usdc: Decimal, bankrupt: dict) -> bool:  # noqa: ANN001
    raised = conversion.sell_for_usdc(
        core,
        batch,
        account,
        usdc,
        BOOK,
        _limit(bankrupt),
        charge=lambda order: charge_fee(core, batch, order),
    )
    return raised != 0


def _buy_back(  # noqa: PLR0913
    core,  # noqa: ANN001
    batch,  # noqa: ANN001
    account: Account,
    asset: str,
    owed: Decimal,
    bankrupt: dict,
    prices: dict,
) -> bool:
    """An IOC bid for 10% of a borrow of `asset` (at least one lot), USDC raised first
    from collateral when the account lacks it."""
    mb = core.markets.get(f"{asset}_USDC")
    best = None if mb is None else mb.book.best_ask()
    if best is None:
        return False
    tick, step_size = mb.market.tick_size, mb.market.step_size
    cap = bankrupt.get(asset) or prices[asset] * mb.market.max_impact_multiplier
    limit = conversion.banded(mb, (cap / tick).to_integral_value(ROUND_FLOOR) * tick, False)
    ask = mb.scale.ticks_to_price(best)
    if limit <= 0 or ask > limit:
        return False
    quantity = min(
        max(
            step_size,
            (owed * liquidation.STEP / step_size).to_integral_value(ROUND_CEILING) * step_size,
        ),
        (owed / step_size).to_integral_value(ROUND_CEILING) * step_size,
    )
    conversion.load_view(batch, account)
    needed = quantity * limit * (1 + liquidation.FEE) - conversion.spendable(batch, account, USDC)
    if needed > 0:
        _sell_collateral(core, batch, account, needed, bankrupt)
        affordable = conversion.spendable(batch, account, USDC) / (limit * (1 + liquidation.FEE))
        quantity = min(
            quantity, (affordable / step_size).to_integral_value(ROUND_FLOOR) * step_size
        )
    if quantity < mb.market.min_quantity or quantity <= 0:
        return False
    conversion.redeemed(batch, account, USDC, quantity * limit, Decimal("1e-6"), True)
    order = conversion.place_ioc(
        core, batch, account, mb, "Bid", limit, quantity, BOOK, autoLendRedeem=True
    )
    if order is None:
        return False
    charge_fee(core, batch, order)
    return True


def charge_fee(core, batch, order: Order) -> Decimal:  # noqa: ANN001
    """The liquidation fee of a spot liquidation order: 1% of its notional, in USDC, to
    the insurance fund. Returns it."""
    fee = liquidation.liquidation_fee(order.executed_quote_quantity)
    if fee:
        legs = [
            (Account(pk=order.account_id), USDC, -fee),
            (core._insurance_account(), USDC, fee),
        ]
        batch.entries.append(
            EntrySpec(LedgerEntry.Kind.LIQUIDATION, legs, memo=f"liquidation fee order {order.id}")
        )
        for who, asset, amount in legs:
            batch.change(who.pk, asset, amount=amount)
    return fee


def _backstop(core, batch, account: Account, assets: list[str], bankrupt: dict) -> Decimal:  # noqa: ANN001
    """The insurance fund buys the collateral at its bankruptcy price, as far as its USDC
    goes (off-book trades LiquidatePositionOnBackstop). Returns the USDC it paid."""
    fund = core._insurance_account()
    fund_usdc = conversion.projected(batch, {fund.pk}).get((fund.pk, USDC), [ZERO])[0]
    conversion.load_view(batch, account)
    paid = ZERO
    for asset in assets:
        price = bankrupt.get(asset)
        mb = core.markets[f"{asset}_USDC"]
        if price is None or fund_usdc <= 0:
            continue
        tick, step_size = mb.market.tick_size, mb.market.step_size
        price = (price / tick).to_integral_value(ROUND_CEILING) * tick
        wanted = conversion.spendable(batch, account, asset)
        held = conversion.redeemed(batch, account, asset, wanted, step_size, True)
        affordable = (fund_usdc / price / step_size).to_integral_value(ROUND_FLOOR) * step_size
        quantity = min(held, affordable)
        if quantity <= 0:
            continue
        quote = conversion.sell_to_fund(
            core, batch, account, mb, quantity, price, BACKSTOP
        ).quote_quantity
        fund_usdc -= quote
        paid += quote
    return paid


def write_off(core, account: Account, result: risk.AccountRisk) -> bool:  # noqa: ANN001
    """Bad debt: nothing is left to sell and the account's USDC borrow exceeds what it
    has; the insurance fund repays the borrow when it can (LiquidationBackstop)."""
    usdc = next((b for b in result.borrows if b.symbol == USDC), None)
    if usdc is None or usdc.net_quantity >= 0:
        return False
    owed = -usdc.net_quantity
    fund = core._insurance_account()
    fund_usdc = (
        Balance.objects.filter(account=fund, asset_id=USDC).values_list("amount", flat=True).first()
        or ZERO
    )
    if fund_usdc < owed:
        return False
    book = lending.lending_account(account)
    entry = post_entry(
        LedgerEntry.Kind.LIQUIDATION,
        [(fund, USDC, -owed), (book, USDC, owed)],
        memo=f"bad debt of {account.name}: {owed} USDC repaid by the insurance fund",
    )
    Movement.objects.create(
        account=account,
        asset_id=USDC,
        event_type=Movement.Event.BORROW_REPAY,
        source="LiquidationBackstop",
        quantity=owed,
        position_after=lending.position(account, USDC),
        entry=entry,
    )
    return True
