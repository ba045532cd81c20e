"""schemathesis against our own OpenAPI schema (`/api/schema/`, drf-spectacular) and, for
the public market-data paths, against Backpack's contract, in-process over WSGI.

Checks: no 5xx; every non-2xx answer in Backpack's error shape; every answer's status and
body within our schema (exchange/schema.py writes the refusals of every operation and the
exact 200 bodies of the trading paths into it); 2xx answers valid against the contract's
response schemas where the contract has them. Our schema documents no parameters or
request bodies (the views read them with accounts/api/params.py), so against it
schemathesis calls each operation bare (signed ones signed); the contract supplies the
parameters for the public paths.
"""

import itertools
from pathlib import Path

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from accounts import signing
from tests.api.helpers import Api
from tests.builders import user_account

APP = get_wsgi_application()
ours = schemathesis.openapi.from_wsgi("/api/schema/", APP)

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "reference" / "backpack-openapi.yml"
# Public market-data paths we implement (the rest of the contract is signed, or answered 501).
PUBLIC = [
    "/api/v1/assets",
    "/api/v1/markets",
    "/api/v1/market",
    "/api/v1/ticker",
    "/api/v1/tickers",
    "/api/v1/depth",
    "/api/v1/trades",
    "/api/v1/trades/history",
    "/api/v1/klines",
    "/api/v1/status",
    "/api/v1/ping",
    "/api/v1/time",
    "/api/v1/borrowLend/markets",
    "/api/v1/borrowLend/markets/history",
]
BOUNDED = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


_users = itertools.count()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """The WSGI handler closes the database connection after each request (as Django's
    test client does not): keep the test's connection (and its transaction) open."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def no_server_error(ctx, response, case) -> bool | None:  # noqa: ANN001
    """No 5xx, except the deliberate 501 NOT_IMPLEMENTED of paths not offered here."""
    if response.status_code == 501 and response.json().get("code") == "NOT_IMPLEMENTED":
        return True
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} query={case.query} body={case.body}: "
        f"{response.status_code} {response.text[:300]}"
    )
    return True


def backpack_error_shape(ctx, response, case) -> bool | None:  # noqa: ANN001
    """A refusal is HTTP 4xx with {"code": ..., "message": ...} (SPEC: Limits and errors)."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"code", "message"}, (
        f"{case.method} {case.formatted_path}: {response.status_code} {body}"
    )
    return True


def _signed_headers(case) -> dict:  # noqa: ANN001
    instruction = signing.instruction_for(case.method.upper(), case.formatted_path)
    if instruction is None:
        return {}
    api = Api.of(user_account(f"fuzz{next(_users)}", USDC="1000", SOL="10"))
    params = dict(case.query or {})
    if isinstance(case.body, dict):
        params.update(case.body)
    return api.headers(case.method.upper(), case.formatted_path, params)


@pytest.mark.django_db
@ours.parametrize()
@BOUNDED
def test_our_schema(case):
    """Each operation of our schema, bare and (for signed paths) signed: no 5xx, errors in
    Backpack's shape, no status and no body outside the schema."""
    checks = [
        no_server_error,
        backpack_error_shape,
        status_code_conformance,
        response_schema_conformance,
    ]
    for headers in ({}, _signed_headers(case)):
        response = case.call(headers=headers)
        case.validate_response(response, checks=checks)


def _contract():  # noqa: ANN202
    if not CONTRACT.exists():
        return None
    schema = schemathesis.openapi.from_path(CONTRACT)
    schema.app = APP
    return schema.include(path=PUBLIC, method="GET")


contract = _contract()

if contract is not None:

    @pytest.mark.django_db
    @contract.parametrize()
    @BOUNDED
    def test_contract_public_paths(case):
        """Backpack's contract drives the parameters; 200s must match its response schemas."""
        response = case.call()
        case.validate_response(
            response,
            checks=[no_server_error, backpack_error_shape, response_schema_conformance],
        )
