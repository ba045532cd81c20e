"""Credit a deposit to a user: manage.py deposit USERNAME SYMBOL QUANTITY."""

from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.errors import ExchangeError
from accounts.models import Deposit


class Command(BaseCommand):
    help = "Credit a (simulated) deposit to a user's account."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("username")
        parser.add_argument("symbol")
        parser.add_argument("quantity")
        parser.add_argument("--blockchain", default=None)

    def handle(self, *args: object, **opts: str) -> None:
        user = get_user_model().objects.filter(username=opts["username"]).first()
        if user is None:
            raise CommandError(f"No user {opts['username']}")
        try:
            quantity = Decimal(opts["quantity"])
            dep = services.deposit(
                services.account_for_user(user),
                opts["symbol"].upper(),
                quantity,
                blockchain=opts["blockchain"],
                source=Deposit.Source.COMMAND,
            )
        except InvalidOperation:
            raise CommandError(f"{opts['quantity']} is not a number") from None
        except ExchangeError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        self.stdout.write(
            f"deposit #{dep.pk}: {dep.quantity.normalize()} {dep.asset_id} {dep.status}"
        )
