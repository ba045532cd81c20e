"""Fault tests: real engine worker processes over Redis against the test database, parts
of the topology taken down mid-stream. Slow (seconds each), bounded, skipped without
PostgreSQL and Redis."""

import pytest
from django.conf import settings
from django.db import connection

FAULTS = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        not settings.REDIS_URL or connection.vendor != "postgresql",
        reason="needs PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)",
    ),
]


QUICK = {"test_reconciliation.py"}  # the in-process engine: neither slow nor needs Redis


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001
    for item in items:
        if "tests/faults/" in str(item.fspath) and item.fspath.basename not in QUICK:
            for mark in FAULTS:
                item.add_marker(mark)
