"""Liquidation, run by the engine (it owns the books and the positions) on every mark
update (`{"op": "liquidate"}`, scheduled each second).

An account whose margin fraction falls under its maintenance margin fraction is marked
liquidating (it cannot trade: ACCOUNT_LIQUIDATING), its open orders are cancelled, then
per run each position is reduced by an IOC order of 10% of it (at least one lot) at a
price no worse than the account's bankruptcy price (system order LiquidatePositionOnBook;
the liquidated account pays 1% of the notional to the insurance fund). Below
autoCloseFactor x MMF, or when the book absorbs nothing, the backstop takes the whole
position at the bankruptcy price: the insurance fund, when it can carry the loss, else
auto-deleveraging against opposite positions ranked by profit % x leverage. When the
margin fraction is back above MMF (or no position is left) the account trades again.
"""

from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from accounts.models import Account, Balance, LedgerEntry
from accounts.services import EntrySpec
from settlement import risk
from settlement.pnl import apply_fill
from settlement.selectors import account_risk_input, margin_functions, mark_prices

STEP = Decimal("0.10")
AUTO_CLOSE_FACTOR = Decimal("0.5")
FEE = Decimal("0.01")
USDC = "USDC"


def _risk_input(core, account: Account, marks: dict) -> risk.AccountRiskInput:  # noqa: ANN001
    """The account's balances (database) and its perp positions (the engine's memory)."""
    rows = []
    for (owner, symbol), p in core.perps.positions.items():
        if owner == account.pk and p.net_quantity:
            imf, mmf = margin_functions(core.markets[symbol].market)
            rows.append(
                risk.PerpPosition(symbol, p.net_quantity, p.net_cost, marks[symbol], imf, mmf)
            )
    return replace(account_risk_input(account), positions=tuple(rows))


def _risk(core, account: Account, marks: dict) -> risk.AccountRisk:  # noqa: ANN001
    return risk.compute_account_risk(
        _risk_input(core, account, marks), risk.MarketRiskData(index_prices=marks)
    )


def _bankruptcy(core, account: Account, symbol: str, marks: dict) -> Decimal:  # noqa: ANN001
    prepared = risk.prepare_for_perp(
        _risk_input(core, account, marks), risk.MarketRiskData(index_prices=marks), symbol
    )
    return risk.bankruptcy_price(prepared) or marks[symbol]


def liquidate(core, batch) -> dict:  # noqa: ANN001
    marks = mark_prices()
    owners = sorted({a for (a, _), p in core.perps.positions.items() if p.net_quantity})
    flagged = set(Account.objects.filter(liquidating=True).values_list("pk", flat=True))
    accounts = {a.pk: a for a in Account.objects.filter(pk__in=set(owners) | flagged)}
    steps, backstops, released = 0, 0, []
    for account_id in sorted(set(owners) | flagged):
        account = accounts[account_id]
        result = _risk(core, account, marks)
        if result.margin_fraction is None or not result.should_liquidate:
            if account.liquidating:
                Account.objects.filter(pk=account_id).update(liquidating=False)
                released.append(account_id)
            continue
        if not account.liquidating:
            Account.objects.filter(pk=account_id).update(liquidating=True)
            for mb in core.markets.values():
                core._apply(batch, mb, mb.book.cancel_all(account_id), {})
            result = _risk(core, account, marks)
        for (owner, symbol), p in sorted(core.perps.positions.items()):
            if owner != account_id or not p.net_quantity:
                continue
            bankrupt = _bankruptcy(core, account, symbol, marks)
            deep = result.margin_fraction < AUTO_CLOSE_FACTOR * result.mmf
            if not deep and _step_on_book(core, batch, account, symbol, bankrupt):
                steps += 1
            else:
                _backstop(core, batch, account, symbol, bankrupt, marks)
                backstops += 1
    return {"steps": steps, "backstops": backstops, "released": released}


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
    before = p.net_quantity
    command = {
        "op": "place",
        "account": account.pk,
        "symbol": symbol,
        "side": "Ask" if selling else "Bid",
        "orderType": "Limit",
        "price": str(price),
        "quantity": str(size),
        "timeInForce": "IOC",
        "reduceOnly": True,
        "systemOrderType": "LiquidatePositionOnBook",
    }
    batch.accounts.setdefault(account.pk, account)
    core._place(batch, mb, command, system=True)
    return core.perps.positions[(account.pk, symbol)].net_quantity != before


def _insurance(core) -> Account:  # noqa: ANN001
    return Account.objects.get(name=Account.INSURANCE_FUND)


def _backstop(core, batch, account: Account, symbol: str, price: Decimal, marks: dict) -> None:  # noqa: ANN001
    """Take the whole position at the bankruptcy price: the insurance fund when it can
    carry the loss at the mark, else the opposite positions (ADL)."""
    perps = core.perps
    mb = core.markets[symbol]
    quantity = perps.positions[(account.pk, symbol)].net_quantity
    fund = _insurance(core)
    fund_usdc = Balance.objects.filter(account=fund, asset_id=USDC).values_list(
        "amount", flat=True
    ).first() or Decimal(0)
    fund_loss = quantity * marks[symbol] - quantity * price
    if fund_usdc + fund_loss >= 0:
        takers = [(fund.pk, quantity)]
        kind = "LiquidatePositionOnBackstop"
    else:
        takers = _adl_counterparties(core, symbol, quantity, marks)
        kind = "LiquidatePositionOnAdl"
    legs = []
    covered = sum((delta for _, delta in takers), Decimal(0))
    moves = [(account.pk, -covered), *takers]
    for owner, delta in moves:
        key = (owner, symbol)
        p = perps.positions.get(key)
        if p is None:
            from settlement.models import Position

            p = perps.positions[key] = Position(account_id=owner, market=mb.market)
        p.net_quantity, p.net_cost, realized = apply_fill(
            p.net_quantity, p.net_cost, delta, price, mb.quote_decimals
        )
        p.realized_pnl += realized
        perps.dirty.add(key)
        batch.touched.add(owner)
        if realized:
            legs += [(Account(pk=owner), USDC, realized), (perps.pnl_pool(), USDC, -realized)]
        mb.book.set_position(owner, mb.scale.qty_to_lots(p.net_quantity))
    if legs:
        batch.entries.append(
            EntrySpec(
                LedgerEntry.Kind.LIQUIDATION, legs, memo=f"{kind} {symbol} {quantity} @ {price}"
            )
        )


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
