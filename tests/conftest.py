"""Shared test set-up. Scenario builders live in tests/builders.py, not in fixtures."""

import pytest


@pytest.fixture(autouse=True)
def _engine_per_test(request):
    """Each test gets a fresh engine rebuilt from its own database: by default inline (in
    the test's transaction); tests of the threaded or out-of-process engine set their own.
    Pure tests (run with `-p no:django`) are left alone."""
    if not request.config.pluginmanager.hasplugin("django"):
        yield
        return
    from trading import services

    request.getfixturevalue("settings").ENGINE_CLIENT = "exchange.engine.local.InlineEngineClient"
    services.engine_client.cache_clear()
    yield
    if services.engine_client.cache_info().currsize:
        client = services.engine_client()
        if hasattr(client, "close"):
            client.close()
    services.engine_client.cache_clear()
