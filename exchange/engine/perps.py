"""The engine's perpetual futures: positions, the pre-trade margin check, and the
settlement of perp fills (USDC-settled, linear).

A perp fill moves no asset: each side's position changes (settlement.pnl.apply_fill),
fees are charged in USDC on the notional, and PnL realized by a reducing fill moves
through the `pnl_pool` account, so the ledger stays zero-sum and pnl_pool's USDC balance
always equals the sum of all positions' unrealized PnL (= -Σ net cost, the net quantity
of a market summing to zero).
"""

from collections import defaultdict
from decimal import Decimal

from accounts.bulk import allocate_ids, insert_rows, update_rows
from accounts.models import Account
from exchange.engine import conversion
from exchange.engine.perp_pnl import PnlOverTime
from settlement import risk
from settlement.models import Position
from settlement.pnl import apply_fill
from settlement.selectors import margin_functions as _functions
from settlement.selectors import mark_prices
from trading import spot
from trading.commands import error

USDC = "USDC"
POSITION_FIELDS = (
    "net_quantity",
    "net_cost",
    "realized_pnl",
    "cumulative_fees",
    "cumulative_funding",
    "cumulative_interest",
)


class Perps(PnlOverTime):
    def __init__(self) -> None:
        self.positions: dict[tuple[int, str], Position] = {}
        self.dirty: set[tuple[int, str]] = set()
        self.owing: set[int] = set()  # accounts whose USDC this batch's settlement debited
        self._pnl_pool: Account | None = None

    def load(self, symbols: list[str]) -> dict[str, dict[int, int]]:
        """Load the positions of these markets; returns {symbol: {account: net quantity}}
        (the caller converts to lots for the books' reduce-only tracking)."""
        self.positions = {
            (p.account_id, p.market_id): p for p in Position.objects.filter(market_id__in=symbols)
        }
        self.dirty.clear()
        self.owing.clear()
        out: dict[str, dict[int, Decimal]] = defaultdict(dict)
        for (account, symbol), p in self.positions.items():
            if p.net_quantity:
                out[symbol][account] = p.net_quantity
        return out

    @staticmethod
    def marks() -> dict[str, Decimal]:
        return mark_prices()

    def pnl_pool(self) -> Account:
        if self._pnl_pool is None:
            self._pnl_pool = Account.objects.get(name=Account.PNL_POOL)
        return self._pnl_pool

    # ---------------------------------------------------------------- margin

    def check(
        self, core, batch, account: Account, symbol: str, side: str, quantity: Decimal | None
    ) -> dict | None:  # noqa: ANN001
        """Refuse a risk-increasing perp order after which the account would be under its
        initial margin (INSUFFICIENT_MARGIN), valuing positions at the mark."""
        marks = mark_prices()
        positions = []
        for (owner, sym), p in self.positions.items():
            if owner == account.pk and (p.net_quantity or sym == symbol):
                positions.append(sym)
        symbols = set(positions) | {symbol}
        perp_rows = []
        for sym in sorted(symbols):
            mb = core.markets[sym]
            p = self.positions.get((account.pk, sym))
            bid = ask = Decimal(0)
            for view in mb.book.open_orders(account.pk):
                remaining = mb.scale.lots_to_qty(view.remaining)
                if view.side.value == "Bid":
                    bid += remaining
                else:
                    ask += remaining
            if sym == symbol and quantity is not None:
                if side == "Bid":
                    bid += quantity
                else:
                    ask += quantity
            imf, mmf = _functions(mb.market)
            perp_rows.append(
                risk.PerpPosition(
                    symbol=sym,
                    net_quantity=p.net_quantity if p else Decimal(0),
                    net_cost=p.net_cost if p else Decimal(0),
                    mark_price=marks[sym],
                    imf_function=imf,
                    mmf_function=mmf,
                    open_bid_quantity=bid,
                    open_ask_quantity=ask,
                )
            )
        balances = _balances(batch, account)
        result = risk.compute_account_risk(
            risk.AccountRiskInput(
                balances=balances, positions=tuple(perp_rows), leverage_limit=account.leverage_limit
            ),
            risk.MarketRiskData(index_prices=marks),
        )
        if result.can_increase_risk:
            return None
        return error(
            "INSUFFICIENT_MARGIN",
            f"The order needs more margin (margin fraction {_fmt(result.margin_fraction)}, "
            f"initial {_fmt(result.imf)})",
        )

    # ---------------------------------------------------------------- fills

    def settle(
        self,
        mb,
        buyer_id: int,
        seller_id: int,
        buyer_fee: Decimal,
        seller_fee: Decimal,
        price: Decimal,
        qty: Decimal,
    ) -> list:  # noqa: ANN001
        """The ledger legs of one perp fill; updates both positions in memory."""
        symbol = mb.market.symbol
        legs = []
        fees = Decimal(0)
        for account_id, delta, fee in ((buyer_id, qty, buyer_fee), (seller_id, -qty, seller_fee)):
            key = (account_id, symbol)
            p = self.positions.get(key)
            if p is None:
                p = self.positions[key] = Position(account_id=account_id, market=mb.market)
            p.net_quantity, p.net_cost, realized = apply_fill(
                p.net_quantity, p.net_cost, delta, price, mb.quote_decimals
            )
            p.realized_pnl += realized
            p.cumulative_fees += fee
            self.dirty.add(key)
            who = Account(pk=account_id)
            if realized:
                legs += [(who, USDC, realized), (self.pnl_pool(), USDC, -realized)]
            if fee:
                legs.append((who, USDC, -fee))
                fees += fee
            if realized < 0 or fee > 0:
                self.owing.add(account_id)
        return legs, fees

    def cover_shortfalls(self, core, batch) -> int:  # noqa: ANN001
        """At the end of a batch: USDC the batch's settlement debited that neither a lend
        nor a borrow covers is raised by selling collateral (exchange.engine.conversion)."""
        owing, self.owing = self.owing, set()
        return conversion.cover(core, batch, owing)

    def flush(self) -> None:
        new = [self.positions[k] for k in sorted(self.dirty) if self.positions[k].pk is None]
        old = [self.positions[k] for k in sorted(self.dirty) if self.positions[k].pk is not None]
        for p, pk in zip(new, allocate_ids(Position, len(new)), strict=True):
            p.pk = p.id = pk
        insert_rows(
            Position,
            ("id", "account", "market", *POSITION_FIELDS, "updated_at"),
            (
                (p.pk, p.account_id, p.market_id, *(getattr(p, f) for f in POSITION_FIELDS), _now())
                for p in new
            ),
        )
        update_rows(
            Position,
            (*POSITION_FIELDS, "updated_at"),
            ((*(getattr(p, f) for f in POSITION_FIELDS), _now(), p.pk) for p in old),
        )
        self.dirty.clear()


def _now():  # noqa: ANN202
    from django.utils import timezone

    return timezone.now()


def _fmt(value: Decimal | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def _balances(batch, account: Account) -> tuple:  # noqa: ANN001
    net, lent = batch.net_and_lent(account.pk)
    return tuple(
        risk.AssetBalance(symbol=s, quantity=q, lend_quantity=lent.get(s, Decimal(0)))
        for s, q in sorted(net.items())
    )


def perp_fee(notional: Decimal, bps: Decimal, decimals: int) -> Decimal:
    return spot.fee(notional, bps, decimals)
