"""Seed the markets of SPEC.md."""

from decimal import Decimal as D

from django.db import migrations

# symbol, base, type, tick, step, min qty, max qty
MARKETS = [
    ("SOL_USDC", "SOL", "SPOT", "0.01", "0.01", "0.01", "100000"),
    ("BTC_USDC", "BTC", "SPOT", "0.1", "0.00001", "0.00001", "1000"),
    ("ETH_USDC", "ETH", "SPOT", "0.01", "0.0001", "0.0001", "10000"),
    ("USDT_USDC", "USDT", "SPOT", "0.0001", "0.01", "1", "10000000"),
    ("SOL_USDC_PERP", "SOL", "PERP", "0.01", "0.01", "0.01", "100000"),
    ("BTC_USDC_PERP", "BTC", "PERP", "0.1", "0.0001", "0.0001", "1000"),
    ("ETH_USDC_PERP", "ETH", "PERP", "0.01", "0.001", "0.001", "10000"),
]


def seed(apps, schema_editor):
    Market = apps.get_model("trading", "Market")
    for symbol, base, kind, tick, step, min_qty, max_qty in MARKETS:
        perp = kind == "PERP"
        Market.objects.update_or_create(
            symbol=symbol,
            defaults=dict(
                base_id=base,
                quote_id="USDC",
                market_type=kind,
                tick_size=D(tick),
                step_size=D(step),
                min_quantity=D(min_qty),
                max_quantity=D(max_qty),
                min_price=D(tick),
                fee_free=symbol == "USDT_USDC",
                imf_base=D("0.02") if perp else None,
                imf_factor=D("0.0000935") if perp else None,
                mmf_base=D("0.0125") if perp else None,
                mmf_factor=D("0.0000561") if perp else None,
                funding_interval_ms=3_600_000 if perp else None,
                funding_rate_upper_bound_bps=D("10") if perp else None,
                funding_rate_lower_bound_bps=D("-10") if perp else None,
            ),
        )


class Migration(migrations.Migration):
    dependencies = [("trading", "0001_initial"), ("accounts", "0002_seed")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
