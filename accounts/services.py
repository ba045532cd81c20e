"""The only code that changes accounts, balances and the ledger."""

import base64
import hashlib
import hmac
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from accounts.bulk import (  # noqa: F401 (re-exported)
    allocate_ids,
    insert_rows,
    new_instance,
    update_rows,
    upsert_rows,
)
from accounts.errors import ExchangeError
from accounts.models import (
    Account,
    ApiKey,
    Asset,
    AssetToken,
    Balance,
    Blockchain,
    Deposit,
    LedgerEntry,
    Posting,
    Withdrawal,
)

Leg = tuple[Account, str, Decimal]  # (account, asset symbol, signed amount)
ZERO = Decimal(0)

_decimals_cache: dict[str, int] = {}
_quanta: dict[str, Decimal] = {}


def asset_decimals(symbol: str) -> int:
    """Decimals of an asset (cached per process; cleared when an Asset is saved)."""
    if symbol not in _decimals_cache:
        _decimals_cache.update(Asset.objects.values_list("symbol", "decimals"))
    try:
        return _decimals_cache[symbol]
    except KeyError:
        raise ExchangeError("INVALID_ASSET", f"Unknown asset {symbol}") from None


def clear_asset_cache() -> None:
    _decimals_cache.clear()
    _quanta.clear()


def check_precision(symbol: str, amount: Decimal) -> None:
    """Refuse amounts that are not Decimal or are finer than the asset's decimals."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ExchangeError("INVALID_QUANTITY", f"{amount!r} is not a decimal amount")
    quantum = _quanta.get(symbol)
    if quantum is None:
        quantum = _quanta[symbol] = Decimal(1).scaleb(-asset_decimals(symbol))
    if amount != amount.quantize(quantum):
        raise ExchangeError(
            "INVALID_QUANTITY", f"{amount} {symbol} is finer than {quantum} ({symbol} decimals)"
        )


def system_account(name: str) -> Account:
    return Account.objects.get(kind=Account.Kind.SYSTEM, name=name)


def account_for_user(user: AbstractBaseUser) -> Account:
    account, _ = Account.objects.get_or_create(user=user, defaults={"name": f"user:{user.pk}"})
    return account


@dataclass
class EntrySpec:
    """One ledger entry to write: its kind, its legs and how to find it again."""

    kind: str
    legs: list[Leg]
    memo: str = ""
    reference: str | None = None


def post_entry(
    kind: str,
    legs: Iterable[Leg],
    *,
    memo: str = "",
    reference: str | None = None,
) -> LedgerEntry:
    """Write one balanced ledger entry and update the cached balances (see post_entries)."""
    return post_entries([EntrySpec(kind, list(legs), memo, reference)])[0]


def post_entries(
    specs: list[EntrySpec],
    locked_deltas: dict[tuple[int, str], Decimal] | None = None,
    *,
    savepoint: bool = True,
) -> list[LedgerEntry]:
    """Write many balanced ledger entries in one go (the engine's batches use this).

    Refuses (ExchangeError, nothing written) any entry whose legs do not sum to zero per
    asset, or any amount finer than its asset's decimals. Balances are changed under row
    locks taken in a fixed order, so concurrent writers never lose an update.
    `locked_deltas` changes locked amounts in the same pass. `savepoint=False`: a caller
    whose whole transaction fails with any error (the engine's batch) saves the savepoint's
    round trips (the refusals above come before anything is written either way).
    """
    with transaction.atomic(savepoint=savepoint):
        return _post_entries(specs, locked_deltas)


def _post_entries(
    specs: list[EntrySpec], locked_deltas: dict[tuple[int, str], Decimal] | None
) -> list[LedgerEntry]:
    deltas: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    _check_entries(specs, deltas)
    ids = allocate_ids(LedgerEntry, len(specs))
    now = _insert_entries(specs, ids)
    apply_balance_changes(deltas, locked_deltas or {})
    return [
        new_instance(
            LedgerEntry, id=i, kind=s.kind, memo=s.memo[:255], reference=s.reference, created_at=now
        )
        for i, s in zip(ids, specs, strict=True)
    ]


def _check_entries(specs: list[EntrySpec], deltas: dict[tuple[int, str], Decimal]) -> None:
    """Refuse unbalanced, empty or too fine entries; add their legs to `deltas`."""
    for spec in specs:
        spec.legs = [leg for leg in spec.legs if leg[2] != 0]
        if not spec.legs:
            raise ExchangeError("INVALID_CLIENT_REQUEST", "A ledger entry needs an amount")
        per_asset: dict[str, Decimal] = defaultdict(Decimal)
        for account, symbol, amount in spec.legs:
            check_precision(symbol, amount)
            per_asset[symbol] += amount
            deltas[(account.id, symbol)] += amount  # (.id: .pk is a property, a call)
        unbalanced = {s: total for s, total in per_asset.items() if total != 0}
        if unbalanced:
            raise ExchangeError("INVALID_CLIENT_REQUEST", f"Unbalanced ledger entry: {unbalanced}")


def _insert_entries(specs: list[EntrySpec], ids: list[int]) -> datetime:
    """The entries' and their postings' rows (no balance changes); their created_at."""
    now = timezone.now()
    insert_rows(
        LedgerEntry,
        ("id", "kind", "memo", "reference", "created_at"),
        ((i, s.kind, s.memo[:255], s.reference, now) for i, s in zip(ids, specs, strict=True)),
    )
    insert_rows(
        Posting,
        ("entry", "account", "asset", "amount"),
        (
            (entry_id, account.id, symbol, amount)
            for entry_id, spec in zip(ids, specs, strict=True)
            for account, symbol, amount in spec.legs
        ),
    )
    return now


class LedgerStream:
    """post_entries in parts, for a writer that makes entries over a while inside one
    transaction (the engine's batch): `write` checks and inserts entries and their postings
    as they come, so the database works on them while the writer goes on, and keeps their
    balance changes; `finish` applies those, with `locked_deltas`, once, in key order (the
    balance rows' locks are taken together, in the order every writer takes them). Entry
    ids come from `ids` (count -> ids), by default drawn from the table's sequence per
    call. Nothing is applied to balances unless `finish` runs in the same transaction."""

    def __init__(self, ids: Callable[[int], list[int]] | None = None) -> None:
        self.ids = ids or (lambda count: allocate_ids(LedgerEntry, count))
        self.deltas: dict[tuple[int, str], Decimal] = defaultdict(Decimal)

    def write(self, specs: list[EntrySpec]) -> list[int]:
        """Insert the entries; their ids, in order."""
        if not specs:
            return []
        _check_entries(specs, self.deltas)
        ids = self.ids(len(specs))
        _insert_entries(specs, ids)
        return ids

    def finish(self, locked_deltas: dict[tuple[int, str], Decimal] | None = None) -> None:
        apply_balance_changes(self.deltas, locked_deltas or {})
        self.deltas = defaultdict(Decimal)


def apply_balance_changes(
    amount_deltas: dict[tuple[int, str], Decimal],
    locked_deltas: dict[tuple[int, str], Decimal],
) -> None:
    """Add signed deltas to Balance.amount and Balance.locked for (account id, asset) keys,
    locking the rows in key order. Only post_entries and lock/unlock call this."""
    keys = sorted(
        {k for k, v in amount_deltas.items() if v} | {k for k, v in locked_deltas.items() if v}
    )
    if not keys:
        return
    if connection.vendor == "postgresql":  # one statement: add to the row, or create it
        upsert_rows(
            Balance,
            ("account", "asset", "amount", "locked"),
            (
                (a, s, amount_deltas.get((a, s), ZERO), locked_deltas.get((a, s), ZERO))
                for a, s in keys
            ),
            conflict=("account", "asset"),
            sets={"amount": "t.amount + excluded.amount", "locked": "t.locked + excluded.locked"},
        )
        return
    Balance.objects.bulk_create(
        [Balance(account_id=a, asset_id=s) for a, s in keys], ignore_conflicts=True
    )
    wanted = set(keys)
    rows = (
        Balance.objects.select_for_update()
        .filter(account_id__in={a for a, _ in keys}, asset_id__in={s for _, s in keys})
        .order_by("account_id", "asset_id")
        .values_list("id", "account_id", "asset_id", "amount", "locked")
    )
    update_rows(
        Balance,
        ("amount", "locked"),
        (
            (amount + amount_deltas.get((a, s), 0), locked + locked_deltas.get((a, s), 0), pk)
            for pk, a, s, amount, locked in rows
            if (a, s) in wanted
        ),
    )


def balance_of(account: Account, symbol: str, *, for_update: bool = False) -> Balance:
    qs = Balance.objects.select_for_update() if for_update else Balance.objects
    balance, _ = qs.get_or_create(account=account, asset_id=symbol)
    return balance


def lock_account(account: Account) -> None:
    """Take the account's row lock: the mutex of every check-then-reserve on its funds
    (the engine takes it for its takers too), held until the transaction ends."""
    Account.objects.select_for_update().filter(pk=account.pk).first()


@transaction.atomic
def lock(account: Account, symbol: str, amount: Decimal) -> None:
    """Lock part of an available balance (open orders, pending withdrawals)."""
    check_precision(symbol, amount)
    lock_account(account)
    available = balance_of(account, symbol).available
    if amount > available:
        raise ExchangeError(
            "INSUFFICIENT_FUNDS", f"Available {available} {symbol} < {amount} {symbol}"
        )
    apply_balance_changes({}, {(account.pk, symbol): amount})


@transaction.atomic
def unlock(account: Account, symbol: str, amount: Decimal) -> None:
    lock_account(account)
    if amount > balance_of(account, symbol).locked:
        raise ExchangeError("INVALID_CLIENT_REQUEST", "Cannot unlock more than is locked")
    apply_balance_changes({}, {(account.pk, symbol): -amount})


# Deposits -------------------------------------------------------------------------------

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _BASE58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def deposit_address(account: Account, blockchain: str) -> str:
    """The account's deterministic deposit address on a simulated chain."""
    if blockchain not in Blockchain.values:
        raise ExchangeError("INVALID_CLIENT_REQUEST", f"Unknown blockchain {blockchain}")
    digest = hmac.new(
        settings.DEPOSIT_ADDRESS_SEED.encode(),
        f"{blockchain}:{account.pk}".encode(),
        hashlib.sha256,
    ).digest()
    if blockchain == Blockchain.ETHEREUM:
        return "0x" + digest[:20].hex()
    if blockchain == Blockchain.BITCOIN:
        return "bc1q" + base64.b32encode(digest[:20]).decode().lower().rstrip("=")
    return _base58(digest)


def default_blockchain(symbol: str) -> str:
    token = AssetToken.objects.filter(asset_id=symbol, deposit_enabled=True).first()
    if token is None:
        raise ExchangeError("INVALID_ASSET", f"{symbol} cannot be deposited")
    return token.blockchain


@transaction.atomic
def deposit(
    account: Account,
    symbol: str,
    quantity: Decimal,
    *,
    blockchain: str | None = None,
    source: str = Deposit.Source.ADMIN,
    transaction_hash: str | None = None,
    confirm: bool = True,
) -> Deposit:
    """Record a deposit from a (simulated) chain; confirmed at once unless confirm=False."""
    check_precision(symbol, quantity)
    if quantity <= 0:
        raise ExchangeError("INVALID_QUANTITY", "A deposit must be positive")
    chain = blockchain or default_blockchain(symbol)
    if not AssetToken.objects.filter(asset_id=symbol, blockchain=chain).exists():
        raise ExchangeError("INVALID_ASSET", f"{symbol} is not on {chain}")
    dep = Deposit.objects.create(
        account=account,
        asset_id=symbol,
        blockchain=chain,
        quantity=quantity,
        to_address=deposit_address(account, chain),
        transaction_hash=transaction_hash or secrets.token_hex(32),
        source=source,
    )
    return confirm_deposit(dep) if confirm else dep


@transaction.atomic
def confirm_deposit(dep: Deposit) -> Deposit:
    """Credit a pending deposit (idempotent: a confirmed deposit is left as it is)."""
    dep = Deposit.objects.select_for_update().get(pk=dep.pk)
    if dep.status == Deposit.Status.CONFIRMED:
        return dep
    dep.entry = post_entry(
        LedgerEntry.Kind.DEPOSIT,
        [
            (system_account(Account.WORLD), dep.asset_id, -dep.quantity),
            (dep.account, dep.asset_id, dep.quantity),
        ],
        memo=f"deposit #{dep.pk} {dep.blockchain} {dep.transaction_hash[:16]}",
        reference=f"deposit:{dep.pk}",
    )
    dep.status = Deposit.Status.CONFIRMED
    dep.save(update_fields=["entry", "status"])
    return dep


def faucet(account: Account, symbol: str) -> Deposit:
    """Testnet faucet: deposit the asset's faucet amount (only with EXCHANGE_TESTNET)."""
    if not settings.EXCHANGE_TESTNET:
        raise ExchangeError("FORBIDDEN", "The faucet exists only on testnet", status=403)
    asset = Asset.objects.filter(symbol=symbol).first()
    if asset is None or asset.faucet_amount <= 0:
        raise ExchangeError("INVALID_ASSET", f"No faucet for {symbol}")
    return deposit(account, symbol, asset.faucet_amount, source=Deposit.Source.FAUCET)


# Withdrawals ----------------------------------------------------------------------------


@transaction.atomic
def request_withdrawal(
    account: Account,
    symbol: str,
    quantity: Decimal,
    *,
    blockchain: str,
    address: str,
    client_id: str = "",
) -> Withdrawal:
    """Lock quantity + fee and record a pending withdrawal; confirm it at once when it is at
    or under the asset's auto-confirm threshold."""
    check_precision(symbol, quantity)
    if quantity <= 0:
        raise ExchangeError("INVALID_QUANTITY", "A withdrawal must be positive")
    token = AssetToken.objects.filter(asset_id=symbol, blockchain=blockchain).first()
    if token is None or not token.withdraw_enabled:
        raise ExchangeError("INVALID_ASSET", f"{symbol} cannot be withdrawn on {blockchain}")
    if quantity < token.minimum_withdrawal:
        raise ExchangeError("INVALID_QUANTITY", f"Minimum withdrawal is {token.minimum_withdrawal}")
    if token.maximum_withdrawal is not None and quantity > token.maximum_withdrawal:
        raise ExchangeError("INVALID_QUANTITY", f"Maximum withdrawal is {token.maximum_withdrawal}")
    if not address or len(address) > 128:
        raise ExchangeError("INVALID_CLIENT_REQUEST", "A withdrawal needs a valid address")
    lock(account, symbol, quantity + token.withdrawal_fee)
    withdrawal = Withdrawal.objects.create(
        account=account,
        asset_id=symbol,
        blockchain=blockchain,
        quantity=quantity,
        fee=token.withdrawal_fee,
        to_address=address,
        client_id=client_id,
    )
    if quantity <= Asset.objects.get(pk=symbol).auto_withdrawal_threshold:
        return confirm_withdrawal(withdrawal)
    return withdrawal


@transaction.atomic
def confirm_withdrawal(withdrawal: Withdrawal) -> Withdrawal:
    """Send a pending withdrawal out: unlock, then debit quantity to the world and fee to fees."""
    w = Withdrawal.objects.select_for_update().get(pk=withdrawal.pk)
    if w.status != Withdrawal.Status.PENDING:
        raise ExchangeError("INVALID_CLIENT_REQUEST", f"Withdrawal #{w.pk} is {w.status}")
    unlock(w.account, w.asset_id, w.quantity + w.fee)
    w.entry = post_entry(
        LedgerEntry.Kind.WITHDRAWAL,
        [
            (w.account, w.asset_id, -(w.quantity + w.fee)),
            (system_account(Account.WORLD), w.asset_id, w.quantity),
            (system_account(Account.FEES), w.asset_id, w.fee),
        ],
        memo=f"withdrawal #{w.pk} to {w.to_address}",
        reference=f"withdrawal:{w.pk}",
    )
    w.status = Withdrawal.Status.CONFIRMED
    w.transaction_hash = secrets.token_hex(32)
    w.save(update_fields=["entry", "status", "transaction_hash"])
    return w


@transaction.atomic
def void_withdrawal(withdrawal: Withdrawal) -> Withdrawal:
    """Cancel a pending withdrawal: the locked amount is released, nothing moves."""
    w = Withdrawal.objects.select_for_update().get(pk=withdrawal.pk)
    if w.status != Withdrawal.Status.PENDING:
        raise ExchangeError("INVALID_CLIENT_REQUEST", f"Withdrawal #{w.pk} is {w.status}")
    unlock(w.account, w.asset_id, w.quantity + w.fee)
    w.status = Withdrawal.Status.VOID
    w.save(update_fields=["status"])
    return w


# Settings and API keys ------------------------------------------------------------------

SETTING_FIELDS = {
    "autoLend": "auto_lend",
    "autoRealizePnl": "auto_realize_pnl",
    "autoRepayBorrows": "auto_repay_borrows",
    "autoBorrowSettlements": "auto_borrow_settlements",
    "leverageLimit": "leverage_limit",
}
MAX_LEVERAGE = Decimal(50)


def update_settings(account: Account, **changes: object) -> Account:
    """Change account settings given by their API names (autoLend, leverageLimit, ...)."""
    unknown = set(changes) - set(SETTING_FIELDS)
    if unknown:
        raise ExchangeError("INVALID_CLIENT_REQUEST", f"Unknown settings: {sorted(unknown)}")
    for api_name, value in changes.items():
        if api_name == "leverageLimit":
            try:
                value = Decimal(str(value))
            except ArithmeticError:
                raise ExchangeError("INVALID_CLIENT_REQUEST", "leverageLimit is a number") from None
            if not value.is_finite() or not Decimal(1) <= value <= MAX_LEVERAGE:
                raise ExchangeError(
                    "MAX_LEVERAGE_REACHED", f"leverageLimit must be from 1 to {MAX_LEVERAGE}"
                )
        elif not isinstance(value, bool):
            raise ExchangeError("INVALID_CLIENT_REQUEST", f"{api_name} must be true or false")
        setattr(account, SETTING_FIELDS[api_name], value)
    account.save(update_fields=[SETTING_FIELDS[n] for n in changes])
    return account


def create_api_key(account: Account, label: str = "") -> tuple[ApiKey, str]:
    """Generate an ED25519 key pair; keep the public key, return the secret seed (base64)
    to be shown once."""
    private = ed25519.Ed25519PrivateKey.generate()
    seed = base64.b64encode(private.private_bytes_raw()).decode()
    public = base64.b64encode(private.public_key().public_bytes_raw()).decode()
    key = ApiKey.objects.create(account=account, public_key=public, label=label[:64])
    return key, seed


def revoke_api_key(key: ApiKey) -> None:
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
