"""Backpack's JSON shapes for accounts, balances, deposits and withdrawals."""

from decimal import Decimal

from rest_framework import serializers

from accounts.models import Account, Blockchain, Deposit, Withdrawal


def dec(value: Decimal) -> str:
    """A decimal as Backpack writes it: a string, without a trailing exponent or zeros."""
    text = format(value.normalize(), "f") if value else "0"
    return text


def naive_time(dt) -> str:  # noqa: ANN001
    return dt.replace(tzinfo=None).isoformat(timespec="milliseconds")


def account_summary(account: Account, fees: dict[str, Decimal]) -> dict:
    return {
        "autoBorrowSettlements": account.auto_borrow_settlements,
        "autoLend": account.auto_lend,
        "autoRealizePnl": account.auto_realize_pnl,
        "autoRepayBorrows": account.auto_repay_borrows,
        "borrowLimit": dec(fees.get("borrowLimit", Decimal(0))),
        "futuresMakerFee": dec(fees["futuresMakerFee"]),
        "futuresTakerFee": dec(fees["futuresTakerFee"]),
        "leverageLimit": dec(account.leverage_limit),
        "limitOrders": int(fees.get("limitOrders", 0)),
        "liquidating": account.liquidating,
        "positionLimit": dec(fees.get("positionLimit", Decimal(0))),
        "spotMakerFee": dec(fees["spotMakerFee"]),
        "spotTakerFee": dec(fees["spotTakerFee"]),
        "triggerOrders": int(fees.get("triggerOrders", 0)),
    }


def deposit_json(dep: Deposit) -> dict:
    source = (
        dep.blockchain[0].lower() + dep.blockchain[1:]
        if dep.source == Deposit.Source.CHAIN
        else "administrator"
    )
    return {
        "id": dep.pk,
        "toAddress": dep.to_address,
        "fromAddress": dep.from_address or None,
        "source": source,
        "status": dep.status,
        "transactionHash": dep.transaction_hash,
        "symbol": dep.asset_id,
        "quantity": dec(dep.quantity),
        "createdAt": naive_time(dep.created_at),
    }


def withdrawal_json(w: Withdrawal) -> dict:
    return {
        "id": w.pk,
        "blockchain": w.blockchain,
        "clientId": w.client_id or None,
        "identifier": w.transaction_hash or None,
        "quantity": dec(w.quantity),
        "fee": dec(w.fee),
        "symbol": w.asset_id,
        "status": w.status,
        "toAddress": w.to_address,
        "transactionHash": w.transaction_hash or None,
        "createdAt": naive_time(w.created_at),
        "isInternal": False,
    }


class DecimalString(serializers.DecimalField):
    """A positive decimal given as a JSON string (or number), kept exact."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_digits=38, decimal_places=18, coerce_to_string=True, **kwargs)


class AccountUpdateSerializer(serializers.Serializer):
    autoBorrowSettlements = serializers.BooleanField(required=False)
    autoLend = serializers.BooleanField(required=False)
    autoRealizePnl = serializers.BooleanField(required=False)
    autoRepayBorrows = serializers.BooleanField(required=False)
    leverageLimit = DecimalString(required=False)

    def validate(self, attrs: dict) -> dict:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(f"Unknown fields: {sorted(unknown)}")
        return attrs


class WithdrawalRequestSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=128)
    blockchain = serializers.ChoiceField(choices=Blockchain.values)
    clientId = serializers.CharField(max_length=255, required=False, allow_blank=True)
    quantity = DecimalString()
    symbol = serializers.CharField(max_length=16)
    twoFactorToken = serializers.CharField(required=False, allow_blank=True)
    autoBorrow = serializers.BooleanField(required=False)
    autoLendRedeem = serializers.BooleanField(required=False)


class PageSerializer(serializers.Serializer):
    """limit/offset of history endpoints (limit default 100, max 1000), and from/to (ms)."""

    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    offset = serializers.IntegerField(min_value=0, default=0)
    # "from" is a Python keyword: declared below.
    to = serializers.IntegerField(min_value=0, required=False)


PageSerializer._declared_fields["from"] = serializers.IntegerField(min_value=0, required=False)
