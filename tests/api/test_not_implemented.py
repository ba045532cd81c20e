"""RFQ, vaults, strategies, prediction markets and market sessions: 501 NOT_IMPLEMENTED."""

import pytest
from django.test import Client

from tests.api.helpers import refused

pytestmark = pytest.mark.django_db

NOT_IMPLEMENTED = [
    ("POST", "/api/v1/rfq"),
    ("GET", "/api/v1/rfqs"),
    ("POST", "/api/v1/rfq/quote"),
    ("POST", "/api/v1/rfq/accept"),
    ("POST", "/api/v1/rfq/refresh"),
    ("POST", "/api/v1/rfq/cancel"),
    ("GET", "/api/v1/vaults"),
    ("GET", "/api/v1/vaults/history"),
    ("POST", "/api/v1/vault/mint"),
    ("POST", "/api/v1/vault/redeem"),
    ("DELETE", "/api/v1/vault/redeem"),
    ("GET", "/api/v1/vault/redeems/pending"),
    ("GET", "/api/v1/vault/nav"),
    ("GET", "/api/v1/strategy"),
    ("POST", "/api/v1/strategy"),
    ("DELETE", "/api/v1/strategy"),
    ("GET", "/api/v1/strategies"),
    ("DELETE", "/api/v1/strategies"),
    ("GET", "/api/v1/prediction"),
    ("GET", "/api/v1/prediction/tags"),
    ("GET", "/api/v1/market-sessions"),
    ("GET", "/wapi/v1/history/rfq"),
    ("GET", "/wapi/v1/history/rfq/fill"),
    ("GET", "/wapi/v1/history/quote"),
    ("GET", "/wapi/v1/history/quote/fill"),
    ("GET", "/wapi/v1/history/strategies"),
]


@pytest.mark.parametrize("method, path", NOT_IMPLEMENTED)
def test_out_of_scope_endpoints_answer_501_in_the_error_shape(
    client: Client, method: str, path: str
):
    message = refused(client.generic(method, path, "{}"), "NOT_IMPLEMENTED", 501)
    assert path in message


def test_a_method_the_contract_does_not_list_is_not_allowed(client: Client):
    refused(client.get("/api/v1/rfq"), "INVALID_CLIENT_REQUEST", 405)
    refused(client.post("/api/v1/vaults"), "INVALID_CLIENT_REQUEST", 405)


def test_securities_answer_an_empty_list_so_ccxt_can_load_markets(client: Client):
    response = client.get("/api/v1/securities")
    assert (response.status_code, response.json()) == (200, [])
