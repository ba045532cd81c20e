"""Rate limits: signed requests per API key, every request per client IP; a refused request
gets 429 TOO_MANY_REQUESTS and changes nothing; other keys and addresses are unaffected.

Limits are lowered per test with `settings`; each test counts under addresses and keys of
its own (the cache, Redis with REDIS_URL, outlives a test)."""

import uuid

import pytest
from django.test import Client

from accounts import services as accounts
from exchange import throttling
from tests.api.helpers import Api, limit, refused
from tests.builders import user_account
from trading.models import Order

pytestmark = pytest.mark.django_db


def an_ip() -> str:
    """An address no other test (or earlier run sharing the Redis cache) counted."""
    return "fd00::" + ":".join(uuid.uuid4().hex[i : i + 4] for i in range(0, 16, 4))


def api_from(account, ip: str) -> Api:  # noqa: ANN001
    api = Api.of(account)
    return Api(api.api_key, api.secret, client=Client(REMOTE_ADDR=ip))


def limits(settings, per_key: str = "", per_ip: str = "", proxies: int = 0) -> None:  # noqa: ANN001
    settings.RATE_LIMITS = {
        "PER_KEY": per_key,
        "PER_IP": per_ip,
        "TRUSTED_PROXIES": proxies,
        "CACHE": "default",
    }


def too_many(response) -> None:  # noqa: ANN001
    refused(response, "TOO_MANY_REQUESTS", 429)
    assert int(response.headers["Retry-After"]) >= 1


def test_defaults_are_generous_enough_for_ccxt_and_overridable(settings):
    per_key = throttling.parse_rate(settings.RATE_LIMITS["PER_KEY"])
    per_ip = throttling.parse_rate(settings.RATE_LIMITS["PER_IP"])
    assert per_key[0] / per_key[1] >= 20 and per_ip[0] / per_ip[1] >= 20  # ccxt: 20 req/s
    assert throttling.parse_rate("600/minute") == (600, 60)
    assert throttling.parse_rate("") is None
    with pytest.raises(ValueError):
        throttling.parse_rate("ten/s")


def test_signed_requests_are_limited_per_api_key(settings):
    limits(settings, per_key="3/m")
    ip = an_ip()
    alice_account = user_account("alice", USDC="100")
    alice = api_from(alice_account, ip)
    for _ in range(3):
        assert alice.get("/api/v1/capital").status_code == 200
    too_many(alice.get("/api/v1/capital"))
    too_many(alice.get("/wapi/v1/history/orders"))

    # Another key on the same address, and public requests from it, are unaffected; so is
    # a second key of alice's own account.
    bob = api_from(user_account("bob", USDC="100"), ip)
    assert bob.get("/api/v1/capital").status_code == 200
    assert alice.client.get("/api/v1/markets").status_code == 200
    assert api_from(alice_account, ip).get("/api/v1/capital").status_code == 200


def test_a_refused_order_changes_nothing(settings):
    limits(settings, per_key="2/m")
    account = user_account("alice", USDC="1000")
    alice = api_from(account, an_ip())
    alice.order("Bid", "10", "1")
    assert alice.get("/api/v1/orders").status_code == 200
    too_many(alice.post("/api/v1/order", limit("Bid", "11", "1")))
    too_many(alice.delete("/api/v1/orders", {"symbol": "SOL_USDC"}))
    assert list(Order.objects.filter(account=account).values_list("price", "status")) == [
        (10, "New")
    ]
    assert accounts.balance_of(account, "USDC").locked == 10


def test_every_request_is_limited_per_client_ip(settings):
    limits(settings, per_ip="4/m")
    ip, other_ip = an_ip(), an_ip()
    public = Client(REMOTE_ADDR=ip)
    alice = api_from(user_account("alice", USDC="100"), ip)
    assert public.get("/api/v1/markets").status_code == 200
    assert public.get("/api/v1/ticker", {"symbol": "SOL_USDC"}).status_code == 200
    assert alice.get("/api/v1/capital").status_code == 200
    assert public.get("/api/v1/depth", {"symbol": "SOL_USDC"}).status_code == 200
    too_many(public.get("/api/v1/markets"))
    too_many(alice.get("/api/v1/capital"))  # a signed request from that address as well
    # Another address, with a key or without, is unaffected.
    assert Client(REMOTE_ADDR=other_ip).get("/api/v1/markets").status_code == 200
    bob = api_from(user_account("bob", USDC="100"), other_ip)
    assert bob.get("/api/v1/capital").status_code == 200


def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(settings):
    limits(settings, per_ip="2/m")
    proxy, client_a, client_b = an_ip(), an_ip(), an_ip()
    spoofer = Client(REMOTE_ADDR=proxy)
    for n in range(2):  # no trusted proxy: a made-up X-Forwarded-For does not evade the limit
        fake = {"X-Forwarded-For": f"10.0.0.{n}"}
        assert spoofer.get("/api/v1/markets", headers=fake).status_code == 200
    too_many(spoofer.get("/api/v1/markets", headers={"X-Forwarded-For": "10.0.0.9"}))

    limits(settings, per_ip="2/m", proxies=1)  # one proxy: the address it appended counts
    behind = Client(REMOTE_ADDR=an_ip())
    forwarded_a = {"X-Forwarded-For": f"1.2.3.4, {client_a}"}  # client-made first hop
    for _ in range(2):
        assert behind.get("/api/v1/markets", headers=forwarded_a).status_code == 200
    too_many(behind.get("/api/v1/markets", headers={"X-Forwarded-For": f"9.9.9.9, {client_a}"}))
    forwarded_b = {"X-Forwarded-For": client_b}
    assert behind.get("/api/v1/markets", headers=forwarded_b).status_code == 200


def test_the_window_slides_and_refused_requests_do_not_count(settings, monkeypatch):
    limits(settings, per_ip="2/s")
    clock = [1_000_000.0]
    monkeypatch.setattr(throttling, "_now", lambda: clock[0])
    client = Client(REMOTE_ADDR=an_ip())

    def status() -> int:
        return client.get("/api/v1/time").status_code

    assert [status(), status()] == [200, 200]
    for _ in range(5):  # hammering while refused does not extend the wait
        assert status() == 429
    clock[0] += 1.0  # the next second: the last second's two requests still weigh fully
    response = client.get("/api/v1/time")
    too_many(response)
    clock[0] += 0.5  # half of them have slid out: one request fits
    assert [status(), status()] == [200, 429]
    clock[0] += 2.0
    assert [status(), status()] == [200, 200]


def test_the_limits_can_be_turned_off(settings):
    limits(settings)
    client = Client(REMOTE_ADDR=an_ip())
    assert all(client.get("/api/v1/time").status_code == 200 for _ in range(30))


def test_failed_signatures_count_against_the_ip_limit_then_get_429(settings):
    limits(settings, per_ip="3/m")
    ip = an_ip()
    account = user_account("alice", USDC="1000")
    alice = Api.of(account)
    _, other_secret = accounts.create_api_key(user_account("mallory", USDC="1"))
    forger = Api(alice.api_key, other_secret, client=Client(REMOTE_ADDR=ip))
    for _ in range(2):  # guesses at alice's signature: refused, and counted
        refused(forger.get("/api/v1/capital"), "INVALID_SIGNATURE", 401)
    refused(forger.post("/api/v1/order", limit("Bid", "10", "1")), "INVALID_SIGNATURE", 401)
    too_many(forger.get("/api/v1/capital"))
    too_many(forger.post("/api/v1/order", limit("Bid", "10", "1")))
    # Good requests from that address wait as well; alice elsewhere is unaffected.
    too_many(api_from(account, ip).get("/api/v1/capital"))
    assert api_from(account, an_ip()).get("/api/v1/capital").status_code == 200
    assert not Order.objects.filter(account=account).exists()
