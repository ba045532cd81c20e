"""Each stream test gets channel layer and cache of its own: a fresh in-memory layer, or
with REDIS_URL a Redis layer and cache under a prefix no other test run shares (groups and
the `depth:<symbol>` snapshot key would otherwise mix with theirs)."""

import uuid

import pytest


@pytest.fixture(autouse=True)
def _own_layer_and_cache(settings):
    if settings.REDIS_URL:
        prefix = f"streams-test-{uuid.uuid4().hex[:12]}"
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": prefix, "expiry": 30},
            }
        }
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": settings.REDIS_URL,
                "KEY_PREFIX": prefix,
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.STREAMS_TICK_SECONDS = 0.05
    yield
