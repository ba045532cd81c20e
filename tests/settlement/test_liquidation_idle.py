"""The liquidation scan runs every second inside an engine batch: with no open perp
position, no borrow and no flagged account it reads no mark prices, accounts or risk
inputs (its batch is then about 2 ms, not 6, ahead of the orders queued behind it)."""

import pytest

from exchange.engine import liquidation
from exchange.streams.publisher import engine_core
from tests.builders import user_account

pytestmark = pytest.mark.django_db


def test_a_scan_with_nobody_to_examine_reads_no_prices_or_accounts(monkeypatch):
    user_account("alice", USDC="1000")  # funds, but no position, borrow or flag
    core = engine_core()
    core.start()

    def unexpected(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("read for nobody")

    monkeypatch.setattr(liquidation, "mark_prices", unexpected)
    monkeypatch.setattr(liquidation, "account_risk_inputs", unexpected)
    (result,) = core.process([{"op": "liquidate"}])
    assert result == {"ok": {"steps": 0, "backstops": 0, "released": [], "writtenOff": []}}
