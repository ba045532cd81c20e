"""Fault tests: real engine worker processes over Redis against the test database, parts
of the topology taken down mid-stream. Slow (seconds each), bounded, skipped without
PostgreSQL and Redis."""

from tests.processes import REAL_SERVICES

FAULTS = REAL_SERVICES


QUICK = {"test_reconciliation.py"}  # the in-process engine: neither slow nor needs Redis


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001
    for item in items:
        if "tests/faults/" in str(item.fspath) and item.fspath.basename not in QUICK:
            for mark in FAULTS:
                item.add_marker(mark)
