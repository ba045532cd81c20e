"""Margin checks that need every part of an account (holdings, borrow-lend positions,
later perp positions): the composition root builds settlement.risk's inputs."""

from decimal import Decimal

from accounts.errors import ExchangeError
from accounts.models import Account
from settlement import risk
from settlement.selectors import account_risk_input, market_data


def check_borrow(account: Account, symbol: str, quantity: Decimal) -> None:
    """Refuse a borrow after which the account's margin fraction would be under its
    initial margin fraction (INSUFFICIENT_MARGIN)."""
    result = risk.compute_account_risk(
        account_risk_input(account, {symbol: quantity}), market_data()
    )
    if not result.can_increase_risk:
        raise ExchangeError(
            "INSUFFICIENT_MARGIN",
            f"Borrowing {quantity} {symbol} needs more margin "
            f"(margin fraction {result.margin_fraction}, initial {result.imf})",
        )


def check_order_borrow(
    account: Account,
    net: dict[str, Decimal],
    lent: dict[str, Decimal],
    symbol: str,
    quantity: Decimal,
) -> dict | None:
    """The engine's pre-trade check of a spot-margin order, on its in-memory view of the
    account (net quantity per asset, lent part): the order may borrow `quantity` of
    `symbol` only if the account then still meets its initial margin. Returns the
    refusal as an engine error, or None."""
    from trading.commands import error

    balances = tuple(
        risk.AssetBalance(
            symbol=s,
            quantity=net.get(s, Decimal(0)),
            lend_quantity=lent.get(s, Decimal(0)),
            open_borrow_quantity=quantity if s == symbol else Decimal(0),
        )
        for s in sorted(set(net) | {symbol})
    )
    result = risk.compute_account_risk(
        risk.AccountRiskInput(balances=balances, leverage_limit=account.leverage_limit),
        market_data(),
    )
    if result.can_increase_risk:
        return None
    return error(
        "INSUFFICIENT_MARGIN",
        f"Borrowing {quantity} {symbol} for this order needs more margin "
        f"(margin fraction {result.margin_fraction}, initial {result.imf})",
    )
