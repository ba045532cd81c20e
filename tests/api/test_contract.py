"""Our responses against Backpack's own contract (backpack-openapi.yml, beside the repo).

Each implemented path is called on a market with real orders and trades, and its 200
answer is validated against the contract's response schema, `$ref`s resolved in the
contract's components. `format: decimal` and `naive-date-time` are checked to parse.
"""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from tests.api.helpers import Api, limit
from tests.api.test_not_implemented import NOT_IMPLEMENTED
from tests.builders import user_account

pytestmark = pytest.mark.django_db

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "reference" / "backpack-openapi.yml"
JSON = "application/json; charset=utf-8"


@cache
def contract() -> dict:
    if not CONTRACT.exists():
        pytest.skip(f"Backpack's contract is not at {CONTRACT}: nothing to validate against")
    import yaml

    return yaml.safe_load(CONTRACT.read_text())


def response_schema(method: str, path: str) -> dict:
    operation = contract()["paths"][path][method.lower()]
    schema = operation["responses"]["200"]["content"][JSON]["schema"]
    # The contract's components travel with the schema so that "#/components/..." resolves.
    return {**schema, "components": contract()["components"]}


def _format_checker():  # noqa: ANN202
    import jsonschema

    checker = jsonschema.FormatChecker()

    @checker.checks("decimal", raises=(InvalidOperation, TypeError))
    def is_decimal(value: object) -> bool:
        return not isinstance(value, str) or Decimal(value).is_finite()

    @checker.checks("naive-date-time", raises=ValueError)
    def is_naive_date_time(value: object) -> bool:
        return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is None

    return checker


def assert_matches_contract(method: str, path: str, body: object, ours: bool = True) -> None:
    """The body is valid under the contract's schema, and (an answer of ours) under ours
    where it has one."""
    import jsonschema

    from tests.api.test_our_schema import assert_within_our_schema

    schema = response_schema(method, path)
    validator = jsonschema.Draft202012Validator(schema, format_checker=_format_checker())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{method} {path} at {list(e.absolute_path)}: {e.message[:300]}" for e in errors[:10]
    )
    if ours:
        assert_within_our_schema(method, path, body)


class Scene:
    """Two traders on SOL_USDC: resting bids and an ask, limit and market fills."""

    def __init__(self) -> None:
        self.alice = Api.of(user_account("alice", USDC="10000", SOL="10"))
        self.bob = Api.of(user_account("bob", SOL="10", USDC="1000"))
        self.alice.order("Bid", "100", "1")
        self.alice.order("Bid", "99", "2", clientId=1)
        self.ask = self.alice.order("Ask", "120", "1", clientId=2)
        self.bob.order("Ask", "99", "1.5")
        market_sell = {"symbol": "SOL_USDC", "side": "Ask", "orderType": "Market"}
        assert self.bob.post("/api/v1/order", {**market_sell, "quantity": "0.1"}).status_code == 200
        assert (
            self.bob.post("/api/v1/order", {**market_sell, "quoteQuantity": "9.9"}).status_code
            == 200
        )


Call = Callable[[Scene, Client], object]

# (method, path, call): every endpoint of trading/api, called as a client would.
CALLS: list[tuple[str, str, Call]] = [
    ("GET", "/api/v1/assets", lambda s, c: c.get("/api/v1/assets")),
    ("GET", "/api/v1/collateral", lambda s, c: c.get("/api/v1/collateral")),
    ("GET", "/api/v1/markets", lambda s, c: c.get("/api/v1/markets")),
    ("GET", "/api/v1/market", lambda s, c: c.get("/api/v1/market", {"symbol": "SOL_USDC_PERP"})),
    ("GET", "/api/v1/ticker", lambda s, c: c.get("/api/v1/ticker", {"symbol": "SOL_USDC"})),
    ("GET", "/api/v1/tickers", lambda s, c: c.get("/api/v1/tickers", {"interval": "1w"})),
    ("GET", "/api/v1/depth", lambda s, c: c.get("/api/v1/depth", {"symbol": "SOL_USDC"})),
    ("GET", "/api/v1/trades", lambda s, c: c.get("/api/v1/trades", {"symbol": "SOL_USDC"})),
    (
        "GET",
        "/api/v1/trades/history",
        lambda s, c: c.get("/api/v1/trades/history", {"symbol": "SOL_USDC", "offset": 1}),
    ),
    (
        "GET",
        "/api/v1/klines",
        lambda s, c: c.get(
            "/api/v1/klines", {"symbol": "SOL_USDC", "interval": "1m", "startTime": 0}
        ),
    ),
    ("GET", "/api/v1/wallets", lambda s, c: c.get("/api/v1/wallets")),
    ("GET", "/api/v1/securities", lambda s, c: c.get("/api/v1/securities")),
    (
        "GET",
        "/api/v1/order",
        lambda s, c: s.alice.get("/api/v1/order", {"symbol": "SOL_USDC", "clientId": 1}),
    ),
    ("POST", "/api/v1/order", lambda s, c: s.alice.post("/api/v1/order", limit("Bid", "90", "1"))),
    (
        "DELETE",
        "/api/v1/order",
        lambda s, c: s.alice.delete(
            "/api/v1/order", {"symbol": "SOL_USDC", "orderId": s.ask["id"]}
        ),
    ),
    ("GET", "/api/v1/orders", lambda s, c: s.alice.get("/api/v1/orders", {"symbol": "SOL_USDC"})),
    (
        "POST",
        "/api/v1/orders",
        lambda s, c: s.alice.post(
            "/api/v1/orders", [limit("Bid", "90", "1"), limit("Bid", "90.001", "1")]
        ),
    ),
    (
        "DELETE",
        "/api/v1/orders",
        lambda s, c: s.alice.delete("/api/v1/orders", {"symbol": "SOL_USDC"}),
    ),
    ("GET", "/wapi/v1/history/orders", lambda s, c: s.bob.get("/wapi/v1/history/orders")),
    ("GET", "/wapi/v1/history/fills", lambda s, c: s.alice.get("/wapi/v1/history/fills")),
]


@pytest.mark.parametrize("method, path, call", CALLS, ids=[f"{m} {p}" for m, p, _ in CALLS])
def test_the_response_matches_the_contract_schema(client: Client, method: str, path: str, call):
    contract()
    response = call(Scene(), client)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body not in ([], {}) or path == "/api/v1/securities", f"{path}: nothing to validate"
    assert_matches_contract(method, path, body)


def test_the_validator_refuses_a_shape_the_contract_does_not_allow():
    with pytest.raises(AssertionError, match="minPrice"):
        market = {"symbol": "X", "baseSymbol": "X", "quoteSymbol": "USDC", "marketType": "SPOT"}
        filters = {"price": {"tickSize": "0.01"}, "quantity": {"minQuantity": "1", "stepSize": "1"}}
        body = {**market, "filters": filters, "orderBookState": "Open", "visible": True}
        assert_matches_contract(
            "GET", "/api/v1/market", {**body, "createdAt": "2025-01-01T00:00:00"}
        )
    with pytest.raises(AssertionError, match="is not a 'decimal'"):
        fill = {"fee": "x", "feeSymbol": "USDC", "isMaker": True, "orderId": "1", "price": "1"}
        fill |= {
            "quantity": "1",
            "side": "Bid",
            "symbol": "SOL_USDC",
            "timestamp": "2025-01-01T00:00:00",
        }
        assert_matches_contract("GET", "/wapi/v1/history/fills", [fill])
    # A null optional (what Backpack's own server writes) is outside the contract.
    order = {"orderType": "Limit", "id": "1", "createdAt": 1, "executedQuantity": "0"}
    order |= {"executedQuoteQuantity": "0", "postOnly": False, "price": "1", "quantity": "1"}
    order |= {"selfTradePrevention": "RejectTaker", "status": "New", "side": "Bid"}
    order |= {"symbol": "SOL_USDC", "timeInForce": "GTC"}
    assert_matches_contract("GET", "/api/v1/orders", [order], ours=False)
    with pytest.raises(AssertionError, match="not valid under any"):
        assert_matches_contract("GET", "/api/v1/orders", [{**order, "clientId": None}], ours=False)


def _routed(resolver: URLResolver, prefix: str = "") -> set[str]:
    paths = set()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            paths |= _routed(entry, route)
        else:
            paths.add("/" + route)
    return paths


def test_every_trading_path_is_validated_or_answers_501():
    from trading.api import urls

    covered = {p for _, p, _ in CALLS} | {p for _, p in NOT_IMPLEMENTED}
    ours = {"/" + str(entry.pattern) for entry in urls.urlpatterns}
    assert ours == covered
    assert ours <= _routed(get_resolver())


def test_every_out_of_scope_contract_path_and_method_answers_501():
    out_of_scope = (
        "/api/v1/rfq",
        "/api/v1/vault",
        "/api/v1/strategy",
        "/api/v1/strategies",
        "/api/v1/prediction",
        "/api/v1/market-sessions",
        "/wapi/v1/history/rfq",
        "/wapi/v1/history/quote",
        "/wapi/v1/history/strategies",
    )
    expected = {
        (method.upper(), path)
        for path, operations in contract()["paths"].items()
        if path.startswith(out_of_scope)
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert expected == set(NOT_IMPLEMENTED)


def test_the_methods_we_answer_are_the_contracts():
    for method, path, _ in CALLS:
        assert method.lower() in contract()["paths"][path], (method, path)
