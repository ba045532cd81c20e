import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Replay protection keeps seen signatures in the cache: start each test empty."""
    cache.clear()
    yield
