"""The engine is pure Python: its tests run with ``-p no:django``.

Shadow tests/conftest.py's autouse engine fixture (it needs pytest-django's
``settings``) so these tests do not need Django.
"""

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _engine_per_test() -> Iterator[None]:
    yield
