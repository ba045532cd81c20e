"""Small builders for readable scenario tests (no fixtures that hide the scenario)."""

import json
import time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.test import Client

from accounts import services, signing
from accounts.models import Account
from accounts.selectors import ledger_report


def user_account(name: str, **deposits: str) -> Account:
    """A user with an account, credited with the given deposits (SYMBOL="quantity")."""
    user = get_user_model().objects.create_user(username=name, password="pw-" + name)
    account = services.account_for_user(user)
    for symbol, quantity in deposits.items():
        services.deposit(account, symbol, Decimal(quantity))
    return account


def seed_insurance_fund(usdc: str) -> Account:
    """Give the insurance fund USDC (from the world account), as backstops need."""
    fund = services.system_account(Account.INSURANCE_FUND)
    world = services.system_account(Account.WORLD)
    services.post_entry(
        "adjustment",
        [(world, "USDC", -Decimal(usdc)), (fund, "USDC", Decimal(usdc))],
        memo="seed the insurance fund",
    )
    return fund


def balance(account: Account, symbol: str) -> Decimal:
    return services.balance_of(account, symbol).amount


def assert_ledger_clean() -> None:
    report = ledger_report()
    assert report.clean, (report.unbalanced_assets, report.balance_drift, report.negative_locks)


class SignedClient:
    """Sends requests signed the way Backpack's clients sign them."""

    def __init__(self, api_key: str, secret: str, client: Client | None = None) -> None:
        self.api_key, self.secret = api_key, secret
        self.client = client or Client()

    @classmethod
    def for_account(cls, account: Account) -> "SignedClient":
        key, secret = services.create_api_key(account)
        return cls(key.public_key, secret)

    def headers(self, method: str, path: str, params: dict | list, **over: object) -> dict:
        instruction = over.pop("instruction", None) or signing.instruction_for(method, path)
        timestamp = over.pop("timestamp", int(time.time() * 1000))
        window = over.pop("window", 5000)
        headers = signing.signed_headers(
            self.api_key, self.secret, instruction, params, timestamp, window
        )
        headers.update({k: str(v) for k, v in over.items()})
        return headers

    def request(self, method: str, path: str, params: dict | list | None = None, **over: object):
        params = params if params is not None else {}
        headers = self.headers(method, path, params, **over)
        if method == "GET":
            return self.client.get(path, params, headers=headers)
        return self.client.generic(
            method, path, json.dumps(params), content_type="application/json", headers=headers
        )

    def get(self, path: str, params: dict | None = None, **over: object):
        return self.request("GET", path, params, **over)


def limit_order(
    account: Account, symbol: str, side: str, price: str, quantity: str, **extra
) -> dict:
    """Place a limit order through the trading services (the engine answers)."""
    from trading import services

    params = {
        "symbol": symbol,
        "side": side,
        "orderType": "Limit",
        "price": price,
        "quantity": quantity,
        **extra,
    }
    return services.place_order(account, params)


def limit_command(account: Account, side: str, price: str, quantity: str) -> dict:
    """A SOL_USDC limit order as the engine command the web processes make of it, for
    tests that hand batches to an EngineCore themselves."""
    from trading import services

    params = {"symbol": "SOL_USDC", "side": side, "orderType": "Limit"}
    return services.order_command(account, params | {"price": price, "quantity": quantity})


def count_reads(monkeypatch, cache) -> list[str]:  # noqa: ANN001
    """The database reads of a ProcessCache (accounts/process_cache.py), by key, from now."""
    count: list[str] = []
    read = cache.read

    def counting(key: str):  # noqa: ANN202
        count.append(key)
        return read(key)

    monkeypatch.setattr(cache, "read", counting)
    return count
