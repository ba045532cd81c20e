"""Seed the assets of SPEC.md, their chains, the fee tiers and the system accounts."""

from decimal import Decimal as D

from django.db import migrations

ASSETS = [
    # symbol, name, coingecko, decimals, weight, haircut, penalty, extra yield, faucet, auto-withdraw
    ("USDC", "USD Coin", "usd-coin", 6, "1.00", "identity", "0", "stablecoinBoost", "10000", "1000"),
    ("USDT", "Tether", "tether", 6, "0.95", "identity", "0", "stablecoinBoost", "10000", "1000"),
    ("SOL", "Solana", "solana", 9, "0.85", "inverseSqrt", "0.002", "solStaking", "100", "10"),
    ("BTC", "Bitcoin", "bitcoin", 8, "0.90", "inverseSqrt", "0.05", "", "1", "0.1"),
    ("ETH", "Ethereum", "ethereum", 8, "0.90", "inverseSqrt", "0.01", "", "10", "2"),
]
TOKENS = [
    # asset, blockchain, min deposit, min withdrawal, withdrawal fee
    ("USDC", "Solana", "1", "5", "1"),
    ("USDC", "Ethereum", "10", "20", "5"),
    ("USDT", "Solana", "1", "5", "1"),
    ("USDT", "Ethereum", "10", "20", "5"),
    ("SOL", "Solana", "0.01", "0.05", "0.01"),
    ("BTC", "Bitcoin", "0.0001", "0.0005", "0.0001"),
    ("ETH", "Ethereum", "0.001", "0.005", "0.002"),
]
FEE_TIERS = [
    # tier, spot volume, futures volume, spot maker/taker, futures maker/taker (bps)
    (1, "0", "0", "8", "10", "2", "5"),
    (2, "100000", "500000", "7", "9", "1.9", "4.5"),
    (3, "1000000", "5000000", "6", "8", "1.6", "4.0"),
    (4, "10000000", "50000000", "4", "6", "1.2", "3.5"),
    (5, "50000000", "250000000", "2", "4", "0.6", "2.8"),
    (6, "250000000", "1000000000", "0", "2.5", "0", "1.8"),
]
SYSTEM_ACCOUNTS = ["world", "fees", "lending_pool", "insurance_fund", "treasury", "pnl_pool"]


def seed(apps, schema_editor):
    Asset = apps.get_model("accounts", "Asset")
    AssetToken = apps.get_model("accounts", "AssetToken")
    FeeTier = apps.get_model("accounts", "FeeTier")
    Account = apps.get_model("accounts", "Account")
    for sym, name, cg, decimals, weight, haircut, penalty, extra, faucet, auto in ASSETS:
        Asset.objects.update_or_create(
            symbol=sym,
            defaults=dict(
                display_name=name,
                coingecko_id=cg,
                decimals=decimals,
                collateral_weight=D(weight),
                haircut=haircut,
                haircut_penalty=D(penalty),
                lendable=True,
                extra_yield=extra,
                faucet_amount=D(faucet),
                auto_withdrawal_threshold=D(auto),
            ),
        )
    for sym, chain, min_dep, min_wd, fee in TOKENS:
        AssetToken.objects.update_or_create(
            asset_id=sym,
            blockchain=chain,
            defaults=dict(
                minimum_deposit=D(min_dep), minimum_withdrawal=D(min_wd), withdrawal_fee=D(fee)
            ),
        )
    for tier, sv, fv, sm, st, fm, ft in FEE_TIERS:
        FeeTier.objects.update_or_create(
            tier=tier,
            defaults=dict(
                spot_volume=D(sv),
                futures_volume=D(fv),
                spot_maker_bps=D(sm),
                spot_taker_bps=D(st),
                futures_maker_bps=D(fm),
                futures_taker_bps=D(ft),
            ),
        )
    for name in SYSTEM_ACCOUNTS:
        Account.objects.get_or_create(name=name, defaults={"kind": "system"})


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
