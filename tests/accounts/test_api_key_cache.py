"""The per-process cache of API keys for the async order views: the requests of a key that
miss read it from the database once between them, a key in steady use is read again in the
background before it expires, and a revocation is not undone by a read begun before it."""

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync

from accounts import authentication as auth
from accounts import services
from tests.builders import count_reads, user_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def key():
    account = user_account("alice", USDC="1")
    api_key, _ = services.create_api_key(account, label="cache")
    auth.KEYS.entries.pop(api_key.public_key, None)
    yield api_key.public_key
    auth.KEYS.entries.pop(api_key.public_key, None)


@pytest.fixture
def reads(monkeypatch):
    """How many times the database is read for a key."""
    return count_reads(monkeypatch, auth.KEYS)


def test_the_requests_of_a_key_that_miss_together_read_it_once(key, reads):
    async def twenty() -> list:
        return await asyncio.gather(*(auth.aapi_key(key) for _ in range(20)))

    found = async_to_sync(twenty)()
    assert reads == [key]
    assert {k.public_key for k in found} == {key} and len({id(k) for k in found}) == 1


def test_a_key_near_its_expiry_is_served_and_read_again_in_the_background(key, reads, settings):
    settings.API_KEY_CACHE_SECONDS = 5
    first = auth.api_key(key)  # cached for 5 s
    assert reads == [key]
    cached_until = auth.KEYS.entries[key][0]

    async def far_then_near() -> tuple:
        far = await auth.aapi_key(key)  # 5 s left: no read
        auth.KEYS.entries[key] = (time.monotonic() + 0.5, first)  # in the last fifth
        near = await auth.aapi_key(key)  # served at once, a read begun
        await asyncio.sleep(0)
        await auth.KEYS.settle()
        return far, near

    far, near = async_to_sync(far_then_near)()
    assert far is first and near is first
    assert reads == [key, key]
    assert auth.KEYS.entries[key][1] is not first and auth.KEYS.entries[key][0] >= cached_until


def test_a_revocation_during_a_read_leaves_the_key_uncached(key, monkeypatch):
    real = auth.ApiKey.objects.select_related

    class RevokedMeanwhile:
        """The read finds the key live; the key is saved (revoked) before it returns."""

        def __init__(self, *args) -> None:  # noqa: ANN002
            self.rows = real(*args)

        def filter(self, **kwargs) -> "RevokedMeanwhile":  # noqa: ANN003
            self.rows = self.rows.filter(**kwargs)
            return self

        def first(self):  # noqa: ANN202
            found = self.rows.first()
            services.revoke_api_key(auth.ApiKey.objects.get(public_key=key))
            return found

    monkeypatch.setattr(auth.ApiKey.objects, "select_related", RevokedMeanwhile)
    auth.KEYS.load(key)  # what it read was live then
    assert auth.cached_key(key) is None
    monkeypatch.undo()
    with pytest.raises(auth.SignatureFailed):
        auth.api_key(key)
