"""Initial index prices, so margin has a value for every asset before a price source runs."""

from decimal import Decimal

from django.db import migrations

PRICES = {"USDC": "1", "USDT": "1", "SOL": "150", "BTC": "90000", "ETH": "3000"}


def seed(apps, schema_editor):
    Asset = apps.get_model("accounts", "Asset")
    for symbol, price in PRICES.items():
        Asset.objects.filter(symbol=symbol, index_price__isnull=True).update(index_price=Decimal(price))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_lending_accounts_and_index_price")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
