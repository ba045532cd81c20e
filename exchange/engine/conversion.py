"""Collateral conversion: the last step of the missing-USDC order (SPEC.md "Settlement
and PnL", Backpack's "Settlement and Realization").

Perp settlement (fees, realized losses, funding, interest on unrealized PnL, the
liquidation fee) is paid in USDC. When it leaves an account's USDC holdings negative at
the end of a batch, the USDC comes from, in order: (1) its USDC lend, redeemed, and
(2) a USDC borrow, when autoBorrowSettlements is on and the pool can supply it - both
done as the batch is written (lending.services.reconcile) - and (3) for what neither
covers, its other collateral sold for USDC, here, before the batch is written: IOC
system orders CollateralConversion on the asset's USDC book, at no worse than the index
less the market's impact band (minImpactMultiplier), largest collateral first; what the
book does not absorb is sold to the insurance fund at the index less 1% (an off-book
trade), as far as the fund's USDC goes. Each sale is a CollateralConversion row (admin)
and a fill in the account's fills history (fillType CollateralConversion). A shortfall
nothing could cover is still borrowed (a debt is never left unrecorded), and the
liquidator takes it from there.
"""

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from accounts.models import Account, Balance, LedgerEntry
from exchange.engine import offbook
from lending import services as lending
from settlement.models import CollateralConversion
from settlement.selectors import mark_prices
from trading import spot
from trading.models import Order

USDC = "USDC"
KIND = "CollateralConversion"
INDEX_FEE = Decimal("0.01")  # what the insurance fund keeps when it buys at the index
ROUNDS = 5  # IOC orders per asset and call, at most
BPS = Decimal(10000)
ZERO = Decimal(0)


def cover(core, batch, owing: set[int]) -> int:  # noqa: ANN001
    """Convert collateral for each account of `owing` (USDC debited by perp settlement in
    this batch) whose USDC holdings the batch leaves below what its lend and a borrow can
    cover. Returns how many accounts needed it."""
    if not owing:
        return 0
    books = dict(Account.objects.filter(owner_id__in=owing).values_list("owner_id", "pk"))
    view = projected(batch, set(owing) | set(books.values()))
    short: dict[int, Decimal] = {}
    for account_id in owing:
        held = view.get((account_id, USDC), [ZERO])[0]
        lent = max(view.get((books.get(account_id), USDC), [ZERO])[0], ZERO)
        if held + lent < 0:
            short[account_id] = -(held + lent)
    if not short:
        return 0
    accounts = Account.objects.filter(pk__in=short, kind=Account.Kind.USER).in_bulk()
    room = (
        lending.borrow_room(USDC)
        if any(a.auto_borrow_settlements for a in accounts.values())
        else ZERO
    )
    converted = 0
    for account_id, account in sorted(accounts.items()):
        needed = short[account_id]
        if account.auto_borrow_settlements:
            borrowed = min(needed, room)
            room -= borrowed
            needed -= borrowed
        if needed > 0:
            convert(core, batch, account, needed)
            converted += 1
    return converted


def convert(core, batch, account: Account, needed: Decimal) -> Decimal:  # noqa: ANN001
    """Sell the account's collateral for `needed` USDC: on the books, then to the
    insurance fund at the index. Returns the USDC raised."""
    raised = sell_for_usdc(core, batch, account, needed, KIND, _conversion_floor)
    if raised < needed:
        raised += _sell_at_index(core, batch, account, needed - raised)
    return raised


def _conversion_floor(mb, index: Decimal) -> Decimal:  # noqa: ANN001
    return index * mb.market.min_impact_multiplier


def sell_for_usdc(  # noqa: PLR0913
    core,  # noqa: ANN001
    batch,  # noqa: ANN001
    account: Account,
    needed: Decimal,
    kind: str,
    floor: Callable,
    charge: Callable[[Order], Decimal] | None = None,
) -> Decimal:
    """Sell the account's non-USDC collateral (largest value first) on its USDC books by
    IOC system orders of type `kind` at no worse than `floor(market book, index)`, until
    `needed` USDC is raised or the books take no more. `charge` (the liquidator's fee)
    is called with each order and returns what it took of the proceeds."""
    load_view(batch, account)
    prices = mark_prices()
    raised = ZERO
    for asset in _collateral(core, batch, account, prices):
        mb = core.markets[f"{asset}_USDC"]
        for _ in range(ROUNDS):
            if raised >= needed:
                return raised
            order, got = _sell_on_book(
                core, batch, account, mb, needed - raised, kind, floor(mb, prices[asset])
            )
            if order is None:
                break
            if charge is not None:
                got -= charge(order)
            if kind == KIND:
                _record(
                    account,
                    asset,
                    order.executed_quantity,
                    order.executed_quote_quantity,
                    got,
                    CollateralConversion.Via.BOOK,
                    order.id,
                )
            raised += got
    return raised


def _collateral(core, batch, account: Account, prices: dict) -> list[str]:  # noqa: ANN001
    net, _ = batch.net_and_lent(account.pk)
    sellable = [
        a
        for a, q in net.items()
        if a != USDC and q > 0 and f"{a}_USDC" in core.markets and prices.get(a)
    ]
    return sorted(sellable, key=lambda a: (-net[a] * prices[a], a))


def spendable(batch, account: Account, asset: str) -> Decimal:  # noqa: ANN001
    """What an order of the account can spend of the asset: its available holdings plus
    its lend (redeemed for the order)."""
    _, lent = batch.net_and_lent(account.pk)
    return batch.available(account.pk, asset) + lent.get(asset, ZERO)


def _sell_on_book(  # noqa: PLR0913
    core,  # noqa: ANN001
    batch,  # noqa: ANN001
    account: Account,
    mb,  # noqa: ANN001
    needed: Decimal,
    kind: str,
    floor: Decimal,
) -> tuple[Order | None, Decimal]:
    """One IOC ask for about `needed` USDC at the best bid, no lower than `floor`."""
    best = mb.book.best_bid()
    tick, step = mb.market.tick_size, mb.market.step_size
    limit = banded(mb, max(tick, (floor / tick).to_integral_value(ROUND_CEILING) * tick), True)
    if best is None or mb.scale.ticks_to_price(best) < limit:
        return None, ZERO
    bid = mb.scale.ticks_to_price(best)
    fee = core._fee_bps(account.pk, True, mb.market) / BPS
    gross = needed / (bid * (1 - max(fee, ZERO)))
    quantity = min(
        (gross / step).to_integral_value(ROUND_CEILING) * step,
        (spendable(batch, account, mb.market.base_id) / step).to_integral_value(ROUND_FLOOR) * step,
    )
    if quantity < mb.market.min_quantity or quantity <= 0:
        return None, ZERO
    if kind != KIND:  # the liquidator redeems the lend whatever the pool's throttle
        quantity = min(quantity, redeemed(batch, account, mb.market.base_id, quantity, step, True))
    before = batch.view[(account.pk, USDC)][0]
    order = place_ioc(core, batch, account, mb, "Ask", limit, quantity, kind, autoLendRedeem=True)
    if order is None:
        return None, ZERO
    return order, batch.view[(account.pk, USDC)][0] - before


def place_ioc(  # noqa: PLR0913
    core,  # noqa: ANN001
    batch,  # noqa: ANN001
    account: Account,
    mb,  # noqa: ANN001
    side: str,
    price: Decimal,
    quantity: Decimal,
    kind: str,
    **extra: object,
) -> Order | None:
    """An IOC limit system order of type `kind` for the account (it may trade while
    liquidating); the order when something of it filled, else None."""
    batch.accounts.setdefault(account.pk, account)
    result = core._place(
        batch,
        mb,
        {
            "op": "place",
            "account": account.pk,
            "symbol": mb.market.symbol,
            "side": side,
            "orderType": "Limit",
            "price": str(price),
            "quantity": str(quantity),
            "timeInForce": "IOC",
            "systemOrderType": kind,
            **extra,
        },
        system=True,
    )
    if "error" in result:
        return None
    order = core.orders[int(result["ok"]["id"])]
    return order if order.executed_quantity else None


def banded(mb, price: Decimal, selling: bool) -> Decimal:  # noqa: ANN001
    """A system order's limit price moved inside the market's price band (limit prices
    within [minMultiplier, maxMultiplier] x the last price), on the tick: a sell no lower
    than the band's low, a buy no higher than its high."""
    last = mb.book.last_price
    if last is None:
        return price
    last = mb.scale.ticks_to_price(last)
    tick, market = mb.market.tick_size, mb.market
    if selling:
        low = (last * market.min_multiplier / tick).to_integral_value(ROUND_CEILING) * tick
        return max(price, low)
    high = (last * market.max_multiplier / tick).to_integral_value(ROUND_FLOOR) * tick
    return min(price, high)


def _sell_at_index(core, batch, account: Account, needed: Decimal) -> Decimal:  # noqa: ANN001
    """What the books did not absorb: the insurance fund buys collateral at the index
    less INDEX_FEE, as far as its USDC goes (largest collateral first)."""
    fund = core._insurance_account()
    fund_usdc = projected(batch, {fund.pk}).get((fund.pk, USDC), [ZERO])[0]
    prices = mark_prices()
    raised = ZERO
    for asset in _collateral(core, batch, account, prices):
        if raised >= needed or fund_usdc <= 0:
            break
        mb = core.markets[f"{asset}_USDC"]
        tick, step = mb.market.tick_size, mb.market.step_size
        price = (prices[asset] * (1 - INDEX_FEE) / tick).to_integral_value(ROUND_FLOOR) * tick
        if price <= 0:
            continue
        wanted = ((needed - raised) / price / step).to_integral_value(ROUND_CEILING) * step
        affordable = (fund_usdc / price / step).to_integral_value(ROUND_FLOOR) * step
        quantity = min(wanted, affordable, redeemed(batch, account, asset, wanted, step))
        if quantity <= 0:
            continue
        trade = sell_to_fund(core, batch, account, mb, quantity, price, KIND)
        quote = trade.quote_quantity
        _record(
            account,
            asset,
            quantity,
            quote,
            quote,
            CollateralConversion.Via.INDEX,
            trade.taker_order_id,
        )
        fund_usdc -= quote
        raised += quote
    return raised


def sell_to_fund(  # noqa: PLR0913
    core,  # noqa: ANN001
    batch,  # noqa: ANN001
    account: Account,
    mb,  # noqa: ANN001
    quantity: Decimal,
    price: Decimal,
    kind: str,
):  # noqa: ANN201
    """The account sells `quantity` of the market's base asset to the insurance fund at
    `price`: an off-book trade whose orders are of system type `kind`."""
    fund = core._insurance_account()
    quote = spot.fill_quote(price, quantity, mb.quote_decimals)
    asset = mb.market.base_id
    return offbook.record(
        core,
        batch,
        mb,
        taker=account.pk,
        maker=fund.pk,
        taker_side="Ask",
        quantity=quantity,
        price=price,
        kinds=(kind, kind),
        legs=[
            (account, asset, -quantity),
            (account, USDC, quote),
            (fund, asset, quantity),
            (fund, USDC, -quote),
        ],
        entry_kind=LedgerEntry.Kind.TRADE if kind == KIND else LedgerEntry.Kind.LIQUIDATION,
    )


def redeemed(  # noqa: PLR0913
    batch,  # noqa: ANN001
    account: Account,
    asset: str,
    wanted: Decimal,
    step: Decimal,
    liquidation: bool = False,
) -> Decimal:
    """Make up to `wanted` of the asset available (redeeming the lend; for the liquidator
    past the pool's throttle); returns what is available now, in whole steps."""
    short = wanted - batch.available(account.pk, asset)
    if short > 0:
        redeemed = lending.redeem_for_order(account, asset, short, liquidation)
        if redeemed:
            batch.change(account.pk, asset, amount=redeemed)
            batch.change(batch.books[account.pk], asset, amount=-redeemed)
    return (batch.available(account.pk, asset) / step).to_integral_value(ROUND_FLOOR) * step


def _record(  # noqa: PLR0913
    account: Account,
    asset: str,
    quantity: Decimal,
    quote: Decimal,
    usdc: Decimal,
    via: str,
    order_id: int,
) -> None:
    CollateralConversion.objects.create(
        account=account,
        asset_id=asset,
        quantity=quantity,
        price=(quote / quantity).quantize(Decimal("1e-12")),
        usdc=usdc,
        via=via,
        order_id=order_id,
    )


# ---------------------------------------------------------------- the batch's view


def projected(batch, ids: set[int]) -> dict[tuple[int, str], list[Decimal]]:  # noqa: ANN001
    """[amount, locked] per (account, asset) of these accounts as the batch will leave
    them: the database plus the entries and locks the batch has not written yet."""
    rows = {
        (b.account_id, b.asset_id): [b.amount, b.locked]
        for b in Balance.objects.filter(account_id__in=ids)
    }
    for spec in batch.entries:
        for account, asset, amount in spec.legs:
            if account.pk in ids:
                rows.setdefault((account.pk, asset), [ZERO, ZERO])[0] += amount
    for (account_id, asset), delta in batch.locked.items():
        if account_id in ids:
            rows.setdefault((account_id, asset), [ZERO, ZERO])[1] += delta
    return rows


def load_view(batch, account: Account) -> None:  # noqa: ANN001
    """Lock the account and put its holdings and positions, as the batch leaves them, in
    the batch's view, so the engine can place system orders for it."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    book = lending.lending_account(account).pk
    rows = projected(batch, {account.pk, book})
    for asset in {USDC, *(a for _, a in rows)}:
        for owner in (account.pk, book):
            rows.setdefault((owner, asset), [ZERO, ZERO])
    batch.view.update(rows)
    batch.accounts[account.pk] = account
    batch.books[account.pk] = book
