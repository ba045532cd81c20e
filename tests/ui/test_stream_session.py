"""The browser's way onto the private streams: a socket opened by a page of this site
subscribes to `account.*` without a signature, as the logged-in session's account; a
socket without a session, or opened from another site (cross-site WebSocket hijacking),
is refused with the error frame signed subscriptions get; signing works as before."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client as HttpClient

from exchange.asgi import application
from tests.builders import user_account
from tests.streams.conftest import _own_layer_and_cache  # noqa: F401 - autouse fixture
from tests.streams.helpers import Client, limit, place, subscribe_signature

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

HOST = "testserver"
OWN = f"http://{HOST}"


class Socket(Client):
    """A stream client whose handshake carries a browser's headers."""

    def __init__(self, cookie: str | None = None, origin: str | None = OWN) -> None:
        super().__init__()
        headers = [(b"host", HOST.encode())]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if cookie is not None:
            headers.append((b"cookie", cookie.encode()))
        self.ws = WebsocketCommunicator(application, "/ws", headers=headers)


def session_cookie(account) -> str:  # noqa: ANN001
    http = HttpClient()
    http.force_login(account.user)
    return f"sessionid={http.cookies['sessionid'].value}"


def refused_unsigned(answer: dict, request_id: int) -> bool:
    error = answer.get("error") or {}
    return (
        answer["id"] == request_id
        and error.get("code") == 4001
        and "signature" in error.get("message", "")
    )


def test_a_logged_in_page_socket_gets_its_own_order_updates_without_a_signature():
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", USDC="1000")
    cookie = session_cookie(alice)

    async def scenario():
        async with Socket(cookie) as ws:
            ack = await ws.subscribe("account.orderUpdate", "account.positionUpdate")
            assert ack == {"id": 1, "result": None}
            await place(bob, limit("Bid", "90", "1"))
            order = await place(alice, limit("Bid", "100", "2"))
            frame = await ws.frame("account.orderUpdate")
            assert frame["data"]["e"] == "orderAccepted" and frame["data"]["i"] == order["id"]
            assert await ws.nothing()  # bob's order is not on alice's socket

    async_to_sync(scenario)()


def test_a_session_less_socket_cannot_subscribe_to_private_streams_without_a_signature():
    alice = user_account("alice", USDC="1000")

    async def scenario():
        async with Socket(cookie=None) as ws:
            assert refused_unsigned(await ws.subscribe("account.orderUpdate"), 1)
            assert refused_unsigned(await ws.subscribe("account.positionUpdate.SOL_USDC"), 2)
            # A refused request subscribes nothing of it, public streams included.
            assert refused_unsigned(await ws.subscribe("trade.SOL_USDC", "account.orderUpdate"), 3)
            await place(alice, limit("Bid", "100", "1"))
            assert await ws.nothing()

    async_to_sync(scenario)()


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://testserver.evil.example", "null", None],
    ids=["other-site", "look-alike", "opaque", "no-origin"],
)
def test_the_session_does_not_count_on_a_socket_another_site_opened(origin):
    alice = user_account("alice", USDC="1000")
    cookie = session_cookie(alice)

    async def scenario():
        async with Socket(cookie, origin=origin) as ws:
            assert refused_unsigned(await ws.subscribe("account.orderUpdate"), 1)
            # The socket itself serves public streams as to any API client.
            assert await ws.subscribe("trade.SOL_USDC") == {"id": 2, "result": None}
            await place(alice, limit("Bid", "100", "1"))
            assert await ws.nothing()

    async_to_sync(scenario)()


def test_a_csrf_trusted_origin_counts_as_the_site(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example"]
    alice = user_account("alice", USDC="1000")
    cookie = session_cookie(alice)

    async def scenario():
        async with Socket(cookie, origin="https://app.example") as ws:
            assert await ws.subscribe("account.orderUpdate") == {"id": 1, "result": None}

    async_to_sync(scenario)()


def test_a_signature_names_the_account_even_on_a_socket_with_a_session():
    alice = user_account("alice", USDC="1000")
    bob = user_account("bob", USDC="1000")
    signature = subscribe_signature(bob)
    cookie = session_cookie(alice)

    async def scenario():
        async with Socket(cookie) as ws:
            await ws.subscribe("account.orderUpdate", signature=signature)
            await place(alice, limit("Bid", "100", "1"))
            assert await ws.nothing()
            order = await place(bob, limit("Bid", "99", "1"))
            assert (await ws.frame("account.orderUpdate"))["data"]["i"] == order["id"]

    async_to_sync(scenario)()
