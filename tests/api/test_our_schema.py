"""Our own schema (/api/schema/, exchange/schema.py) against real answers: every trading
path's 200 body, called as in test_contract.py, is valid under the body our schema
documents (strictly: no key outside it), and a shape outside it is refused."""

from functools import cache
from pathlib import Path

import pytest
from django.test import Client

from exchange.schema import BODIES
from tests.api.helpers import Api
from tests.api.test_contract import CALLS, Scene
from tests.builders import user_account

pytestmark = pytest.mark.django_db


@cache
def _schema() -> dict:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def body_schema(method: str, path: str) -> dict:
    operation = _schema()["paths"][path][method.lower()]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return {**schema, "components": _schema()["components"]}


def errors(method: str, path: str, body: object) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(body_schema(method, path))
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(body)]


def assert_within_our_schema(method: str, path: str, body: object) -> None:
    """Where our schema documents the body: valid under it (tests that check the contract
    call this as well)."""
    if (method.lower(), path) in BODIES:
        found = errors(method, path, body)
        assert not found, f"{method} {path} outside our schema: " + "; ".join(found[:5])


@pytest.mark.parametrize("method, path, call", CALLS, ids=[f"{m} {p}" for m, p, _ in CALLS])
def test_real_answers_are_within_our_schema(client: Client, method: str, path: str, call):
    if (method.lower(), path) not in BODIES:
        pytest.skip(f"{method} {path}: our schema documents no body for it")
    response = call(Scene(), client)
    assert response.status_code == 200, response.content
    assert not errors(method, path, response.json())  # (test_contract checks it too)


WITHDRAWAL = {
    "address": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
    "blockchain": "Solana",
    "quantity": "25",
    "symbol": "USDC",
}
# The account and its capital: (method, path, call on a funded account's Api).
ACCOUNT_CALLS = [
    ("GET", "/api/v1/account", lambda api: api.get("/api/v1/account")),
    ("GET", "/api/v1/capital", lambda api: api.get("/api/v1/capital")),
    ("GET", "/wapi/v1/capital/deposits", lambda api: api.get("/wapi/v1/capital/deposits")),
    (
        "GET",
        "/wapi/v1/capital/deposit/address",
        lambda api: api.get("/wapi/v1/capital/deposit/address", {"blockchain": "Solana"}),
    ),
    (
        "POST",
        "/wapi/v1/capital/withdrawals",
        lambda api: api.post("/wapi/v1/capital/withdrawals", WITHDRAWAL),
    ),
    ("GET", "/wapi/v1/capital/withdrawals", lambda api: api.get("/wapi/v1/capital/withdrawals")),
]


def test_the_accounts_answers_are_within_our_schema():
    api = Api.of(user_account("alice", USDC="1000", SOL="2"))
    for method, path, call in ACCOUNT_CALLS:
        response = call(api)
        assert response.status_code == 200, (path, response.content)
        body = response.json()
        assert body not in ([], {}), f"{path}: nothing to validate"
        assert not errors(method, path, body), path


def test_every_documented_body_is_checked_against_a_real_answer():
    """Each documented body is one that a test validates a real answer against: CALLS and
    ACCOUNT_CALLS here, or test_perps_api's and test_borrow_lend_api's contract checks
    (which check ours too)."""
    called = {(m.lower(), p) for m, p, _ in [*CALLS, *ACCOUNT_CALLS]}
    called.add(("get", "/api/v1/status"))
    here = Path(__file__).parent
    checked = (here / "test_perps_api.py").read_text() + (
        here / "test_borrow_lend_api.py"
    ).read_text()
    rest = {key for key in set(BODIES) - called if key[1] not in checked}
    assert not rest, f"documented bodies no test validates: {sorted(rest)}"
    assert not errors("GET", "/api/v1/status", Client().get("/api/v1/status").json())


def test_a_shape_outside_our_schema_is_refused():
    assert errors("GET", "/api/v1/status", {"status": "Ok", "extra": 1})
    assert errors("GET", "/api/v1/ticker", {"symbol": "SOL_USDC", "lastPrice": 1.5})
    refused = _schema()["paths"]["/api/v1/rfq"]["post"]["responses"]
    assert "501" in refused and "200" not in refused
