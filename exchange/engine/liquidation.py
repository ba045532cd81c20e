"""Liquidation, run by the engine (it owns the books and the positions) on every mark
update (`{"op": "liquidate"}`, scheduled each second).

A user account whose margin fraction falls under its maintenance margin fraction is marked
liquidating (it cannot trade: ACCOUNT_LIQUIDATING), its open orders are cancelled, then
per run each position is reduced by an IOC order of 10% of it (at least one lot) at a
price no worse than the account's bankruptcy price (system order LiquidatePositionOnBook;
the liquidated account pays 1% of the notional to the insurance fund). Below
autoCloseFactor x MMF, or when the book absorbs nothing, the backstop takes the whole
position at the bankruptcy price: the insurance fund, when it can carry the loss, else
auto-deleveraging against opposite positions ranked by profit % x leverage; both are
off-book trades with a fill on each side (exchange.engine.offbook). Borrows are
liquidated in the same runs (exchange.engine.borrow_liquidation), so an account whose
only exposure is a borrow is liquidated too. When the margin fraction is back above MMF,
or nothing is left to liquidate (the insurance fund repays a USDC borrow left as bad
debt when it can), the account trades again.
"""

from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from accounts.models import Account, Balance, LedgerEntry
from exchange.engine import conversion, offbook
from settlement import risk
from settlement.pnl import apply_fill
from settlement.selectors import (
    account_risk_input,
    account_risk_inputs,
    margin_functions,
    mark_prices,
)

STEP = Decimal("0.10")
AUTO_CLOSE_FACTOR = Decimal("0.5")
BOOK = "LiquidatePositionOnBook"
FEE = Decimal("0.01")
USDC = "USDC"


def _risk_input(
    core,  # noqa: ANN001
    account: Account,
    marks: dict,
    balances: risk.AccountRiskInput | None = None,
) -> risk.AccountRiskInput:
    """The account's balances (database, or read already) and its perp positions (the
    engine's memory)."""
    rows = []
    for (owner, symbol), p in core.perps.positions.items():
        if owner == account.pk and p.net_quantity:
            imf, mmf = margin_functions(core.markets[symbol].market)
            rows.append(
                risk.PerpPosition(symbol, p.net_quantity, p.net_cost, marks[symbol], imf, mmf)
            )
    return replace(balances or account_risk_input(account), positions=tuple(rows))


def _risk(core, account: Account, marks: dict, balances=None) -> risk.AccountRisk:  # noqa: ANN001
    return risk.compute_account_risk(
        _risk_input(core, account, marks, balances), risk.MarketRiskData(index_prices=marks)
    )


def _bankruptcy(core, account: Account, symbol: str, marks: dict) -> Decimal:  # noqa: ANN001
    prepared = risk.prepare_for_perp(
        _risk_input(core, account, marks), risk.MarketRiskData(index_prices=marks), symbol
    )
    return risk.bankruptcy_price(prepared) or marks[symbol]


def liquidate(core, batch) -> dict:  # noqa: ANN001
    from exchange.engine import borrow_liquidation as borrows

    owners = {a for (a, _), p in core.perps.positions.items() if p.net_quantity}
    flagged = set(Account.objects.filter(liquidating=True).values_list("pk", flat=True))
    candidates = owners | flagged | borrows.borrowers()
    if not candidates:  # (each second: no mark prices, account or risk reads for nobody)
        return {"steps": 0, "backstops": 0, "released": [], "writtenOff": []}
    marks = mark_prices()
    accounts = Account.objects.filter(pk__in=candidates, kind=Account.Kind.USER).in_bulk()
    inputs = account_risk_inputs(list(accounts.values()))
    steps, backstops, released, written_off = 0, 0, [], []
    for account_id, account in sorted(accounts.items()):
        result = _risk(core, account, marks, inputs[account_id])
        perps = [
            s
            for (owner, s), p in sorted(core.perps.positions.items())
            if owner == account_id and p.net_quantity
        ]
        stuck = not perps and not borrows.sellable(core, result) and not _can_buy_back(result)
        if result.should_liquidate and stuck and borrows.write_off(core, account, result):
            written_off.append(account_id)
        if not result.should_liquidate or stuck:
            if account.liquidating:
                Account.objects.filter(pk=account_id).update(liquidating=False)
                released.append(account_id)
            continue
        if not account.liquidating:
            Account.objects.filter(pk=account_id).update(liquidating=True)
            account.liquidating = True
            for mb in core.markets.values():
                core._apply(batch, mb, mb.book.cancel_all(account_id), {})
            result = _risk(core, account, marks)
        deep = result.margin_fraction < AUTO_CLOSE_FACTOR * result.mmf
        for symbol in perps:
            bankrupt = _bankruptcy(core, account, symbol, marks)
            if not deep and _step_on_book(core, batch, account, symbol, bankrupt):
                steps += 1
            else:
                _backstop(core, batch, account, symbol, bankrupt, marks)
                backstops += 1
        if result.borrows:
            on_book, backstopped = borrows.step(
                core,
                batch,
                account,
                result,
                _risk_input(core, account, marks),
                marks,
                deep,
                closing_perps=bool(perps) and not deep,
            )
            steps += on_book
            backstops += backstopped
    return {
        "steps": steps,
        "backstops": backstops,
        "released": released,
        "writtenOff": written_off,
    }


def _can_buy_back(result: risk.AccountRisk) -> bool:
    """A borrow of an asset other than USDC that USDC the account has can buy back."""
    usdc = sum((c.total_quantity for c in result.collateral if c.symbol == USDC), Decimal(0))
    return usdc > 0 and any(b.symbol != USDC for b in result.borrows)


def _step_on_book(core, batch, account: Account, symbol: str, bankrupt: Decimal) -> bool:  # noqa: ANN001
    """One IOC of 10% of the position (at least one lot) at no worse than bankruptcy."""
    mb = core.markets[symbol]
    p = core.perps.positions[(account.pk, symbol)]
    step = mb.market.step_size
    size = max(step, (abs(p.net_quantity) * STEP / step).to_integral_value(ROUND_CEILING) * step)
    size = min(size, abs(p.net_quantity))
    selling = p.net_quantity > 0
    tick = mb.market.tick_size
    rounding = ROUND_CEILING if selling else ROUND_FLOOR
    price = max(tick, (bankrupt / tick).to_integral_value(rounding) * tick)
    price = conversion.banded(mb, price, selling)
    before = p.net_quantity
    side = "Ask" if selling else "Bid"
    conversion.place_ioc(core, batch, account, mb, side, price, size, BOOK, reduceOnly=True)
    return core.perps.positions[(account.pk, symbol)].net_quantity != before


def _backstop(core, batch, account: Account, symbol: str, price: Decimal, marks: dict) -> None:  # noqa: ANN001
    """Take the whole position at the bankruptcy price (on the tick, in the liquidated
    account's favour): the insurance fund when it can carry the loss at the mark, else the
    opposite positions (ADL). Each transfer is an off-book trade with its fill on both
    sides (LiquidatePositionOnBackstop / LiquidatePositionOnAdl)."""
    perps = core.perps
    mb = core.markets[symbol]
    quantity = perps.positions[(account.pk, symbol)].net_quantity
    tick = mb.market.tick_size
    rounding = ROUND_CEILING if quantity > 0 else ROUND_FLOOR
    price = max(tick, (price / tick).to_integral_value(rounding) * tick)
    fund = core._insurance_account()
    fund_usdc = Balance.objects.filter(account=fund, asset_id=USDC).values_list(
        "amount", flat=True
    ).first() or Decimal(0)
    fund_loss = quantity * marks[symbol] - quantity * price
    fund_pnl = sum(  # what it already carries from earlier backstops, at the marks
        (
            p.net_quantity * marks[s] - p.net_cost
            for (o, s), p in perps.positions.items()
            if o == fund.pk
        ),
        Decimal(0),
    )
    if fund_usdc + fund_pnl + fund_loss >= 0:
        takers = [(fund.pk, quantity)]
        kind = "LiquidatePositionOnBackstop"
    else:
        takers = _adl_counterparties(core, symbol, quantity, marks)
        kind = "LiquidatePositionOnAdl"
    for owner, delta in takers:
        legs = _transfer(core, batch, mb, account.pk, -delta, price)
        legs += _transfer(core, batch, mb, owner, delta, price)
        offbook.record(
            core,
            batch,
            mb,
            taker=account.pk,
            maker=owner,
            taker_side="Ask" if delta > 0 else "Bid",
            quantity=abs(delta),
            price=price,
            kinds=(kind, kind),
            legs=legs,
            entry_kind=LedgerEntry.Kind.LIQUIDATION,
        )


def _transfer(core, batch, mb, owner: int, delta: Decimal, price: Decimal) -> list:  # noqa: ANN001
    """Move `delta` of a perp position to/from `owner` at `price`: its position in memory
    (and the book's reduce-only view of it), and the legs of the PnL it realizes."""
    perps = core.perps
    symbol = mb.market.symbol
    p = perps.positions.get((owner, symbol))
    if p is None:
        from settlement.models import Position

        p = perps.positions[(owner, symbol)] = Position(account_id=owner, market=mb.market)
    p.net_quantity, p.net_cost, realized = apply_fill(
        p.net_quantity, p.net_cost, delta, price, mb.quote_decimals
    )
    p.realized_pnl += realized
    perps.dirty.add((owner, symbol))
    if realized < 0:
        perps.owing.add(owner)
    core._apply(batch, mb, mb.book.set_position(owner, mb.scale.qty_to_lots(p.net_quantity)), {})
    if not realized:
        return []
    return [(Account(pk=owner), USDC, realized), (perps.pnl_pool(), USDC, -realized)]


def _adl_counterparties(
    core, symbol: str, quantity: Decimal, marks: dict
) -> list[tuple[int, Decimal]]:  # noqa: ANN001
    """Opposite positions ranked by profit % x effective leverage (most first); each gives
    up what it can until the liquidated quantity is covered."""
    mark = marks[symbol]
    ranked = []
    for (owner, sym), p in core.perps.positions.items():
        if sym != symbol or not p.net_quantity or (p.net_quantity > 0) == (quantity > 0):
            continue
        pnl = p.net_quantity * mark - p.net_cost
        profit = pnl / abs(p.net_cost) if p.net_cost else Decimal(0)
        notional = abs(p.net_quantity * mark)
        equity = Balance.objects.filter(account_id=owner, asset_id=USDC).values_list(
            "amount", flat=True
        ).first() or Decimal(0)
        leverage = notional / max(equity + pnl, Decimal("0.000001"))
        ranked.append((profit * leverage, owner, p.net_quantity))
    remaining = abs(quantity)
    out = []
    for _, owner, held in sorted(ranked, reverse=True):
        take = min(abs(held), remaining)
        out.append((owner, take if quantity > 0 else -take))
        remaining -= take
        if not remaining:
            break
    return out


def liquidation_fee(notional: Decimal) -> Decimal:
    return (notional * FEE).quantize(Decimal("0.000001"), rounding=ROUND_CEILING)
