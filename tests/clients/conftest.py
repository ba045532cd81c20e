"""ccxt against the real server: each test gets its own server process on the test
database (transactional, restored from the migrations' seed data), so the server's engine
never outlives the rows it was rebuilt from."""

import pytest

from tests.clients.server import running_exchange


@pytest.fixture
def exchange_url(transactional_db, tmp_path):  # noqa: ANN001, ANN201
    with running_exchange(tmp_path) as url:
        yield url
