"""PnL over time for the engine's perp positions: continuous realization (autoRealizePnl)
and the hourly interest on unrealized PnL (interest-bearing perps). A mixin of Perps:
positions live in the engine's memory, so these run as engine commands."""

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from accounts.models import Account, LedgerEntry
from accounts.services import EntrySpec

USDC = "USDC"


def _round_usdc(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


def _accounts_with(flag: bool, ids: set[int]) -> set[int]:
    return set(
        Account.objects.filter(pk__in=ids, auto_realize_pnl=flag).values_list("pk", flat=True)
    )


class PnlOverTime:
    def realize(self, core, batch) -> int:  # noqa: ANN001
        """autoRealizePnl: move each position's unrealized PnL (at the mark) into the USDC
        balance without changing its size; the cost basis resets to the mark. Returns how many
        positions were realized."""
        marks = self.marks()
        owners = _accounts_with(True, {a for (a, _), p in self.positions.items() if p.net_quantity})
        legs = []
        for (account_id, symbol), p in sorted(self.positions.items()):
            if account_id not in owners or not p.net_quantity:
                continue
            mark = marks[symbol]
            pnl = _round_usdc(p.net_quantity * mark - p.net_cost)
            if not pnl:
                continue
            p.net_cost += pnl
            p.realized_pnl += pnl
            self.dirty.add((account_id, symbol))
            legs += [(Account(pk=account_id), USDC, pnl), (self.pnl_pool(), USDC, -pnl)]
            batch.touched.add(account_id)
            if pnl < 0:
                self.owing.add(account_id)
        if legs:
            batch.entries.append(EntrySpec(LedgerEntry.Kind.REALIZATION, legs, memo="RealizePnl"))
        return len(legs) // 2

    def pnl_interest(self, core, batch, hour: str) -> int:  # noqa: ANN001
        """Interest-bearing perps: for one ended hour, positive unrealized PnL earns the USDC
        lend rate and negative pays the USDC borrow rate (UnrealizedPositivePnl /
        UnrealizedNegativePnl), against the fees account; lenders' rounding down, borrowers'
        up. Once per hour (the entry's reference)."""
        reference = f"pnl-interest:{hour}"
        if LedgerEntry.objects.filter(reference=reference).exists():
            return 0
        from lending import rates
        from lending import services as lending

        pool = lending.Pool.objects.get(asset_id=USDC)
        usdc = rates.pool_rates(*lending.totals(USDC), lending.params(pool))
        marks = self.marks()
        owners = _accounts_with(
            False, {a for (a, _), p in self.positions.items() if p.net_quantity}
        )
        legs, total = [], Decimal(0)
        for (account_id, symbol), p in sorted(self.positions.items()):
            if account_id not in owners or not p.net_quantity:
                continue
            pnl = p.net_quantity * marks[symbol] - p.net_cost
            if pnl > 0:
                amount = rates.lender_interest(pnl, usdc.lend_rate, 6)
            else:
                amount = -rates.borrower_interest(-pnl, usdc.borrow_rate, 6)
            if not amount:
                continue
            p.cumulative_interest += amount
            self.dirty.add((account_id, symbol))
            legs.append((Account(pk=account_id), USDC, amount))
            total += amount
            batch.touched.add(account_id)
            if amount < 0:
                self.owing.add(account_id)
        if legs:
            legs.append((core._fees_account(), USDC, -total))
            batch.entries.append(
                EntrySpec(
                    LedgerEntry.Kind.INTEREST,
                    legs,
                    memo=f"UnrealizedPnl interest lend {usdc.lend_rate} borrow {usdc.borrow_rate}",
                    reference=reference,
                )
            )
        return len(legs) - 1 if legs else 0

    def funding(self, core, batch, command: dict) -> int:  # noqa: ANN001
        """One interval's funding of one market: longs pay shorts at a positive rate,
        zero-sum, the rounding residual to the insurance fund; once per (market, hour)."""
        from settlement import funding
        from settlement.models import FundingPayment, FundingRate

        symbol, hour = command["symbol"], command["hour"]
        reference = f"funding:{symbol}:{hour}"
        if LedgerEntry.objects.filter(reference=reference).exists():
            return 0
        rate, mark = Decimal(command["rate"]), Decimal(command["mark"])
        held = {
            a: p.net_quantity
            for (a, s), p in self.positions.items()
            if s == symbol and p.net_quantity
        }
        paid, residual = funding.payments(held, mark, rate, 6)
        legs = [(Account(pk=a), USDC, q) for a, q in sorted(paid.items())]
        interval_end = datetime.fromisoformat(hour)
        rows = []
        for account_id, amount in paid.items():
            p = self.positions[(account_id, symbol)]
            p.cumulative_funding += amount
            self.dirty.add((account_id, symbol))
            batch.touched.add(account_id)
            if amount < 0:
                self.owing.add(account_id)
            rows.append(
                FundingPayment(
                    account_id=account_id,
                    market_id=symbol,
                    interval_end=interval_end,
                    rate=rate,
                    quantity=amount,
                )
            )
        if legs:
            if residual:
                legs.append((Account.objects.get(name=Account.INSURANCE_FUND), USDC, residual))
            batch.entries.append(
                EntrySpec(
                    LedgerEntry.Kind.FUNDING,
                    legs,
                    memo=f"funding {symbol} {rate}",
                    reference=reference,
                )
            )
            FundingPayment.objects.bulk_create(rows)
        FundingRate.objects.filter(market_id=symbol, interval_end=interval_end).update(paid=True)
        return len(rows)
