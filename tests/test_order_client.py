"""The web processes' engine client (exchange/order_client.py) against a real engine worker
over Redis: orders through the ASGI application's fast lane, the replay mark set in the
same round trip as the engine command, replies read by one reader per event loop."""

import asyncio
import json
import signal

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator

from accounts.errors import ExchangeError
from exchange.asgi import application
from tests.api.helpers import Api, limit, stamp
from tests.builders import assert_ledger_clean, user_account
from tests.processes import (
    REAL_SERVICES,
    free_port,
    kill,
    start_worker,
    use_channel_engine,
    wait_for,
)
from trading import services
from trading.models import Order

pytestmark = REAL_SERVICES


def use_fast_client(settings, redis_url: str, timeout: float = 3) -> dict:  # noqa: ANN001
    env = use_channel_engine(settings, redis_url, timeout)
    settings.ENGINE_CLIENT = "exchange.order_client.FastEngineClient"
    settings.CHANNEL_LAYERS["default"]["BACKEND"] = (
        "exchange.channel_layer.OneTripRedisChannelLayer"
    )
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "PER_KEY": "", "PER_IP": ""}
    services.engine_client.cache_clear()
    return env


async def _request(method: str, path: str, body: object, headers: dict) -> dict:
    communicator = HttpCommunicator(
        application,
        method,
        path,
        body=json.dumps(body).encode(),
        headers=[(b"content-type", b"application/json")]
        + [(k.lower().encode(), str(v).encode()) for k, v in headers.items()],
    )
    communicator.scope["client"] = ("127.0.0.1", 50000)
    response = await communicator.get_response(timeout=20)
    body = json.loads(response["body"])
    refusal = body if isinstance(body, dict) and "code" in body else {}
    return {"http": response["status"], "body": body, **refusal}


def request(method: str, path: str, body: object, headers: dict) -> dict:
    return async_to_sync(_request)(method, path, body, headers)


def together(*calls: tuple) -> list[dict]:
    """Requests served in the same turn of one event loop (one engine message)."""

    async def run() -> list[dict]:
        return await asyncio.gather(*(_request(*call) for call in calls))

    return async_to_sync(run)()


def _answers() -> bool:
    try:
        return services.engine_client().call([]) == []
    except ExchangeError:
        return False


@pytest.fixture
def worker(settings, tmp_path):  # noqa: ANN001, ANN201
    env = use_fast_client(settings, settings.REDIS_URL)
    proc = start_worker(env, tmp_path / "worker.log")
    wait_for(_answers, 60, "the engine worker")
    yield proc
    kill(proc, signal.SIGTERM)


def test_orders_replays_and_refusals_through_the_fast_client(worker):
    alice = user_account("alice", USDC="1000")
    api = Api.of(alice)
    order = limit("Bid", "100", "1")
    headers = api.headers("POST", "/api/v1/order", order, timestamp=stamp())
    placed = request("POST", "/api/v1/order", order, headers)
    assert placed["http"] == 200 and placed["body"]["status"] == "New", placed
    replayed = request("POST", "/api/v1/order", order, headers)
    assert replayed["http"] == 401 and replayed["code"] == "INVALID_SIGNATURE", replayed
    assert "Replayed" in replayed["message"]

    # The same signed request twice in one turn: one order, one replay refused.
    headers = api.headers("POST", "/api/v1/order", order, timestamp=stamp())
    other = limit("Bid", "99", "1")
    both = together(
        ("POST", "/api/v1/order", order, headers),
        ("POST", "/api/v1/order", order, headers),
        (
            "POST",
            "/api/v1/order",
            other,
            api.headers("POST", "/api/v1/order", other, timestamp=stamp()),
        ),
    )
    assert sorted(r["http"] for r in both) == [200, 200, 401], both
    assert [r["code"] for r in both if r["http"] == 401] == ["INVALID_SIGNATURE"]

    # Refused before the engine: the mark is set all the same (a replay says so).
    bad = limit("Bid", "100.001", "1")
    headers = api.headers("POST", "/api/v1/order", bad, timestamp=stamp())
    assert request("POST", "/api/v1/order", bad, headers)["code"] == "INVALID_PRICE"
    assert request("POST", "/api/v1/order", bad, headers)["code"] == "INVALID_SIGNATURE"

    # Answered by the engine with a refusal; cancels and batches.
    gone = {"symbol": "SOL_USDC", "orderId": "999999"}
    missing = request(
        "DELETE",
        "/api/v1/order",
        gone,
        api.headers("DELETE", "/api/v1/order", gone, timestamp=stamp()),
    )
    assert missing["http"] == 404 and missing["code"] == "RESOURCE_NOT_FOUND", missing
    batch = [limit("Bid", "90", "1"), limit("Bid", "90", "0.001")]
    answered = request(
        "POST",
        "/api/v1/orders",
        batch,
        api.headers("POST", "/api/v1/orders", batch, timestamp=stamp()),
    )
    assert [r["operation"] for r in answered["body"]] == ["Ok", "Err"], answered
    everything = {"symbol": "SOL_USDC"}
    cancelled = request(
        "DELETE",
        "/api/v1/orders",
        everything,
        api.headers("DELETE", "/api/v1/orders", everything, timestamp=stamp()),
    )
    assert sorted(o["status"] for o in cancelled["body"]) == ["Cancelled"] * 4, cancelled
    assert Order.objects.filter(account=alice).count() == 4
    assert_ledger_clean()


def test_many_callers_of_one_turn_each_get_their_own_answer(worker):
    alice = user_account("alice", USDC="100000")
    api = Api.of(alice)
    calls = []
    for i in range(40):
        order = limit("Bid", str(50 + i), "1", clientId=i + 1)
        calls.append(
            (
                "POST",
                "/api/v1/order",
                order,
                api.headers("POST", "/api/v1/order", order, timestamp=stamp()),
            )
        )
    answers = together(*calls)
    assert [a["http"] for a in answers] == [200] * 40, answers
    assert [a["body"]["clientId"] for a in answers] == list(range(1, 41))
    assert [a["body"]["price"] for a in answers] == [str(50 + i) for i in range(40)]


def test_engine_down_times_out_and_redis_down_is_a_server_error(settings, tmp_path):
    use_fast_client(settings, settings.REDIS_URL, timeout=1)  # no worker listens
    api = Api.of(user_account("alice", USDC="1000"))
    order = limit("Bid", "100", "1")
    down = request(
        "POST",
        "/api/v1/order",
        order,
        api.headers("POST", "/api/v1/order", order, timestamp=stamp()),
    )
    assert down["http"] == 503 and down["code"] == "TIMEOUT", down

    url = f"redis://127.0.0.1:{free_port()}/0"
    use_fast_client(settings, url, timeout=1)
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    unreachable = request(
        "POST",
        "/api/v1/order",
        order,
        api.headers("POST", "/api/v1/order", order, timestamp=stamp()),
    )
    assert unreachable["http"] == 503 and unreachable["code"] == "SERVER_ERROR", unreachable
    assert not Order.objects.exists()


def test_the_reader_stops_when_nobody_waits(worker):
    api = Api.of(user_account("alice", USDC="1000"))
    order = limit("Bid", "100", "1")
    headers = api.headers("POST", "/api/v1/order", order, timestamp=stamp())

    async def run() -> tuple:
        answer = await _request("POST", "/api/v1/order", order, headers)
        replay = await _request("POST", "/api/v1/order", order, headers)  # alone in its turn
        lane = services.engine_client().lanes[asyncio.get_running_loop()]
        await asyncio.sleep(0)
        return answer, replay, lane

    answer, replay, lane = async_to_sync(run)()
    assert answer["http"] == 200 and replay["code"] == "INVALID_SIGNATURE"
    assert not lane.waiting
    wait_for(lambda: lane.reader is None, 5, "the reader to stop")
