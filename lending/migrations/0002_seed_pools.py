"""One pool per lendable asset, with SPEC.md's curve parameters and the stablecoin boost."""

from decimal import Decimal as D

from django.db import migrations

STABLE = dict(r_min=D(0), r_opt=D("0.08"), r_max=D("1.50"), optimal_utilization=D("0.80"))
MAJOR = dict(r_min=D(0), r_opt=D("0.05"), r_max=D("2.00"), optimal_utilization=D("0.70"))
POOLS = {
    "USDC": {**STABLE, "boost_apy": D("0.04")},
    "USDT": {**STABLE, "boost_apy": D("0.04")},
    "SOL": MAJOR,
    "BTC": MAJOR,
    "ETH": MAJOR,
}


def seed(apps, schema_editor):
    Pool = apps.get_model("lending", "Pool")
    for symbol, params in POOLS.items():
        Pool.objects.update_or_create(asset_id=symbol, defaults=params)


class Migration(migrations.Migration):
    dependencies = [("lending", "0001_initial"), ("accounts", "0004_seed_index_prices")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
