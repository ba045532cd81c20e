"""A living demo market: market-making accounts quote both sides of every visible market
around the index price, and a taker account trades a little, so a new user of `make run`
sees books, trades and candles move at once.

Everything goes through `trading.services` (the engine validates, matches and commits as
for any user). Run by the `trading.demo_market_makers` task every few seconds when
settings.DEMO_MARKET_MAKERS is on (the embedded default; off under pytest).
"""

import logging
import random
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model

from accounts import services as accounts_services
from accounts.errors import ExchangeError
from accounts.models import Account, Asset, Balance, Deposit
from trading import services
from trading.models import Market

log = logging.getLogger(__name__)

MAKER = "demo-market-maker"
TAKER = "demo-taker"
# Levels quoted per side, the spread of the first level and the step between levels
# (fractions of the index price), and the notional of one level in USDC.
LEVELS = 5
FIRST = Decimal("0.0005")
STEP = Decimal("0.0008")
LEVEL_NOTIONAL = (Decimal(200), Decimal(2000))
TAKER_NOTIONAL = (Decimal(20), Decimal(300))
TAKER_CHANCE = 0.6
# Funding kept on the demo accounts: topped up to this much (in USDC of value) when
# an asset falls below a quarter of it.
FUNDING_VALUE = Decimal(5_000_000)


def demo_account(name: str) -> Account:
    """The demo user `name`'s account (created with an unusable password: nobody logs in)."""
    user, created = get_user_model().objects.get_or_create(username=name)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return accounts_services.account_for_user(user)


def _fund(account: Account, prices: dict[str, Decimal]) -> None:
    held = dict(Balance.objects.filter(account=account).values_list("asset_id", "amount"))
    for symbol, price in prices.items():
        if not price:
            continue
        target = FUNDING_VALUE / price
        decimals = accounts_services.asset_decimals(symbol)
        target = target.quantize(Decimal(1).scaleb(-min(decimals, 4)), rounding=ROUND_DOWN)
        have = held.get(symbol, Decimal(0))
        if have < target / 4 and target > 0:
            try:
                accounts_services.deposit(
                    account, symbol, target - have, source=Deposit.Source.COMMAND
                )
            except ExchangeError as exc:  # an asset without a deposit chain: skip it
                log.info("demo: cannot fund %s with %s: %s", account, symbol, exc.message)


def _round(value: Decimal, unit: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    return (value / unit).to_integral_value(rounding=rounding) * unit


def quotes(market: Market, index: Decimal, rng: random.Random) -> list[dict]:
    """LEVELS limit orders a side around `index`, on the market's tick and step grid."""
    orders = []
    for level in range(LEVELS):
        offset = FIRST + STEP * level
        for side, sign in (("Bid", -1), ("Ask", 1)):
            price = _round(index * (1 + sign * offset), market.tick_size)
            if price <= 0:
                continue
            notional = Decimal(rng.randint(*map(int, LEVEL_NOTIONAL)))
            quantity = max(
                _round(notional / price, market.step_size, ROUND_DOWN), market.min_quantity
            )
            if market.max_quantity and quantity > market.max_quantity:
                quantity = market.max_quantity
            orders.append(
                {
                    "symbol": market.symbol,
                    "side": side,
                    "orderType": "Limit",
                    "price": str(price),
                    "quantity": str(quantity),
                    "postOnly": True,
                }
            )
    return orders


def taker_order(market: Market, index: Decimal, rng: random.Random) -> dict:
    notional = Decimal(rng.randint(*map(int, TAKER_NOTIONAL)))
    quantity = max(_round(notional / index, market.step_size, ROUND_DOWN), market.min_quantity)
    return {
        "symbol": market.symbol,
        "side": rng.choice(("Bid", "Ask")),
        "orderType": "Market",
        "quantity": str(quantity),
    }


def run(rng: random.Random | None = None) -> int:
    """One round: fund, re-quote every market, maybe trade. Returns the orders placed."""
    rng = rng or random.Random()
    prices = {
        a.symbol: a.index_price
        for a in Asset.objects.exclude(index_price__isnull=True)
        if a.index_price
    }
    prices.setdefault("USDC", Decimal(1))
    maker, taker = demo_account(MAKER), demo_account(TAKER)
    _fund(maker, prices)
    _fund(taker, prices)
    placed = 0
    for market in Market.objects.filter(visible=True).order_by("symbol"):
        index = prices.get(market.base_id)
        if not index:
            continue
        try:
            services.cancel_all(maker, market.symbol)
            results = services.place_orders(maker, quotes(market, index, rng))
            placed += sum(1 for r in results if "id" in r)
            if rng.random() < TAKER_CHANCE:
                services.place_order(taker, taker_order(market, index, rng))
                placed += 1
        except ExchangeError as exc:
            log.info("demo %s: %s %s", market.symbol, exc.code, exc.message)
    return placed
