"""Create (or reuse) a funded user with a new API key; print {"apiKey", "apiSecret"}."""

import json
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.errors import ExchangeError
from accounts.models import Deposit


class Command(BaseCommand):
    help = "manage.py demo_account NAME --deposit USDC=100000 --deposit SOL=500"

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("name")
        parser.add_argument("--deposit", action="append", default=[], metavar="SYMBOL=QTY")
        parser.add_argument("--password", default=None, help="to log in to the UI as NAME")

    def handle(self, *args: object, **opts: object) -> None:
        deposits = []
        for item in opts["deposit"]:
            symbol, _, qty = str(item).partition("=")
            try:
                deposits.append((symbol.strip().upper(), Decimal(qty)))
            except InvalidOperation:
                raise CommandError(f"--deposit {item}: expected SYMBOL=QUANTITY") from None
        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(username=opts["name"])
            if opts["password"]:
                user.set_password(opts["password"])
                user.save()
            elif created:
                user.set_unusable_password()
                user.save()
            account = services.account_for_user(user)
            try:
                for symbol, qty in deposits:
                    services.deposit(account, symbol, qty, source=Deposit.Source.COMMAND)
            except ExchangeError as exc:
                raise CommandError(f"{exc.code}: {exc.message}") from None
            key, secret = services.create_api_key(account, label="demo_account")
        self.stdout.write(json.dumps({"apiKey": key.public_key, "apiSecret": secret}))
