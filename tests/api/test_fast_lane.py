"""Order placement and cancellation through the ASGI application, as the web workers serve
them: the fast lane (exchange/async_http.py) answers them in the event loop, with the same
answers and refusals as Django's pipeline; every other request still goes through Django."""

import json
import uuid
from decimal import Decimal as D

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

from accounts import services as accounts
from exchange.asgi import application
from exchange.async_http import _async_view
from tests.api.helpers import Api, limit, stamp
from tests.builders import assert_ledger_clean, user_account
from trading.models import Order

pytestmark = pytest.mark.django_db


class Answer:
    def __init__(self, response: dict) -> None:
        self.status = response["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in response["headers"]}
        self.body = json.loads(response["body"])

    def refused(self, code: str, status: int) -> str:
        assert self.status == status, (self.status, self.body)
        assert set(self.body) == {"code", "message"} and self.body["code"] == code, self.body
        return self.body["message"]


def asgi(
    method: str, path: str, params: dict | list, headers: dict, client: str = "127.0.0.1"
) -> Answer:
    communicator = HttpCommunicator(
        application,
        method,
        path,
        body=json.dumps(params).encode(),
        headers=[(b"content-type", b"application/json")]
        + [(k.lower().encode(), str(v).encode()) for k, v in headers.items()],
    )
    communicator.scope["client"] = (client, 50000)
    return Answer(async_to_sync(communicator.get_response)(timeout=20))


def signed(api: Api, method: str, path: str, params: dict | list, **over: object) -> Answer:
    over.setdefault("timestamp", stamp())
    return asgi(method, path, params, api.headers(method, path, params, **over))


def test_orders_are_placed_and_cancelled_through_the_fast_lane():
    assert _async_view("POST", "/api/v1/order") is not None
    assert _async_view("DELETE", "/api/v1/orders") is not None
    assert _async_view("GET", "/api/v1/order") is None  # GETs go through Django
    alice = user_account("alice", USDC="1000")
    api = Api.of(alice)

    placed = signed(api, "POST", "/api/v1/order", limit("Bid", "100", "2", clientId=7))
    assert placed.status == 200, placed.body
    assert placed.body["status"] == "New" and placed.body["clientId"] == 7
    assert accounts.balance_of(alice, "USDC").locked == D("200")

    # (Django's ASGI handler runs the sync GET views in threads of their own, outside this
    # test's transaction: the open orders are read through the test client.)
    listed = api.get("/api/v1/orders", {"symbol": "SOL_USDC"}).json()
    assert [o["id"] for o in listed] == [placed.body["id"]]

    cancelled = signed(
        api, "DELETE", "/api/v1/order", {"symbol": "SOL_USDC", "orderId": placed.body["id"]}
    )
    assert cancelled.status == 200 and cancelled.body["status"] == "Cancelled", cancelled.body
    assert accounts.balance_of(alice, "USDC").locked == 0

    batch = signed(
        api, "POST", "/api/v1/orders", [limit("Bid", "90", "1"), limit("Bid", "90", "0.001")]
    )
    assert [r["operation"] for r in batch.body] == ["Ok", "Err"], batch.body
    gone = signed(api, "DELETE", "/api/v1/orders", {"symbol": "SOL_USDC"})
    assert [o["status"] for o in gone.body] == ["Cancelled"]
    assert_ledger_clean()


def test_the_fast_lane_refuses_in_backpacks_shapes_and_changes_nothing():
    alice = user_account("alice", USDC="1000")
    api = Api.of(alice)
    order = limit("Bid", "100", "2")

    unsigned = asgi("POST", "/api/v1/order", order, {})
    unsigned.refused("UNAUTHORIZED", 401)
    assert unsigned.headers["www-authenticate"] == "X-API-Key"

    headers = api.headers("POST", "/api/v1/order", order)
    forged = asgi("POST", "/api/v1/order", {**order, "price": "1"}, headers)
    assert "Invalid signature" in forged.refused("INVALID_SIGNATURE", 401)

    assert asgi("POST", "/api/v1/order", order, headers).status == 200
    replayed = asgi("POST", "/api/v1/order", order, headers)
    assert "Replayed" in replayed.refused("INVALID_SIGNATURE", 401)

    signed(api, "POST", "/api/v1/order", limit("Bid", "100.001", "1")).refused("INVALID_PRICE", 400)
    signed(api, "POST", "/api/v1/order", limit("Bid", "100", "1", symbol="NOPE_USDC")).refused(
        "INVALID_SYMBOL", 400
    )
    not_an_order = asgi("POST", "/api/v1/order", ["x"], api.headers("POST", "/api/v1/order", order))
    not_an_order.refused("INVALID_SIGNATURE", 401)
    signed(api, "DELETE", "/api/v1/order", {"symbol": "SOL_USDC", "orderId": "999999"}).refused(
        "RESOURCE_NOT_FOUND", 404
    )
    assert Order.objects.filter(account=alice).count() == 1
    assert_ledger_clean()


def test_the_fast_lane_keeps_the_per_key_rate_limit(settings):
    settings.RATE_LIMITS = {
        "PER_KEY": "1/m",
        "PER_IP": "",
        "TRUSTED_PROXIES": 0,
        "CACHE": "default",
    }
    api = Api.of(user_account("alice", USDC="1000"))
    assert signed(api, "POST", "/api/v1/order", limit("Bid", "100", "1")).status == 200
    refused = signed(api, "POST", "/api/v1/order", limit("Bid", "100", "1"))
    refused.refused("TOO_MANY_REQUESTS", 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert Order.objects.count() == 1


def test_a_revoked_key_is_refused_at_once_although_keys_are_cached():
    alice = user_account("alice", USDC="1000")
    api = Api.of(alice)
    assert signed(api, "POST", "/api/v1/order", limit("Bid", "100", "1")).status == 200
    accounts.revoke_api_key(alice.api_keys.get())
    refused = signed(api, "POST", "/api/v1/order", limit("Bid", "100", "1"))
    assert "revoked" in refused.refused("INVALID_SIGNATURE", 401)


def test_failed_signatures_in_the_fast_lane_count_against_the_ip_limit(settings):
    settings.RATE_LIMITS = {
        "PER_KEY": "",
        "PER_IP": "2/m",
        "TRUSTED_PROXIES": 0,
        "CACHE": "default",
    }
    alice = user_account("alice", USDC="1000")
    api = Api.of(alice)
    order = limit("Bid", "100", "1")
    ip = f"fd00::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    for _ in range(2):
        forged = asgi(
            "POST",
            "/api/v1/order",
            {**order, "price": "1"},
            api.headers("POST", "/api/v1/order", order, timestamp=stamp()),
            client=ip,
        )
        forged.refused("INVALID_SIGNATURE", 401)
    asgi(
        "POST",
        "/api/v1/order",
        order,
        api.headers("POST", "/api/v1/order", order, timestamp=stamp()),
        client=ip,
    ).refused("TOO_MANY_REQUESTS", 429)
    assert not Order.objects.filter(account=alice).exists()


def test_the_fast_lanes_request_is_djangos_asgi_request_field_for_field():
    from io import BytesIO

    from django.core.handlers.asgi import ASGIRequest

    from exchange.async_http import FastRequest

    scope = {
        "type": "http",
        "method": "DELETE",
        "path": "/api/v1/order",
        "query_string": b"symbol=SOL_USDC&orderId=5",
        "client": ("10.0.0.7", 4321),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"content-type", b"application/json; charset=utf-8"),
            (b"content-length", b"2"),
            (b"x-api-key", b"key"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"x-forwarded-for", b"5.6.7.8"),
            (b"x_api_key", b"smuggled"),
        ],
    }
    fast, django = FastRequest(scope, b"{}"), ASGIRequest(scope, BytesIO(b"{}"))
    assert fast.META == django.META
    assert dict(fast.headers) == dict(django.headers)
    assert fast.headers["X-API-KEY"] == "key" and fast.headers.get("x-forwarded-for") == (
        "1.2.3.4,5.6.7.8"
    )
    assert fast.GET == django.GET and fast.body == django.body == b"{}"
    assert (fast.method, fast.path, fast.path_info) == (django.method, django.path, "/api/v1/order")
    assert fast.content_type == django.content_type and fast.encoding == django.encoding


def test_the_fast_lane_counts_rate_limits_on_the_same_counters_as_drf(settings):
    settings.RATE_LIMITS = {
        "PER_KEY": "3/m",
        "PER_IP": "",
        "TRUSTED_PROXIES": 0,
        "CACHE": "default",
    }
    api = Api.of(user_account("alice", USDC="1000"))
    assert api.post("/api/v1/order", limit("Bid", "100", "1")).status_code == 200  # DRF
    assert signed(api, "POST", "/api/v1/order", limit("Bid", "100", "1")).status == 200
    assert api.post("/api/v1/order", limit("Bid", "100", "1")).status_code == 200
    for _ in range(2):  # refusals are not counted: the limit stays reached, not exceeded
        refused = signed(api, "POST", "/api/v1/order", limit("Bid", "100", "1"))
        refused.refused("TOO_MANY_REQUESTS", 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 120
    assert api.post("/api/v1/order", limit("Bid", "100", "1")).status_code == 429
    assert Order.objects.count() == 3
