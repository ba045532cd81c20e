"""Borrow and lend through Backpack's REST paths: a lend, a borrow, a repay and a
redemption signed like a client does, with the positions, movements, interest payments
and position history they leave, the public markets, and the refusals. Every 200 answer
is validated against Backpack's contract."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from lending import rates, services
from lending.api import urls
from lending.models import Movement, RateHistory
from tests.api.helpers import Api, refused
from tests.api.test_contract import assert_matches_contract, contract
from tests.builders import assert_ledger_clean, balance, user_account

pytestmark = pytest.mark.django_db

EXECUTE = "/api/v1/borrowLend"
POSITIONS = "/api/v1/borrowLend/positions"
MARKETS = "/api/v1/borrowLend/markets"
MARKETS_HISTORY = "/api/v1/borrowLend/markets/history"
MOVEMENTS = "/wapi/v1/history/borrowLend"
INTEREST = "/wapi/v1/history/interest"
POSITION_HISTORY = "/wapi/v1/history/borrowLend/positions"
PATHS = {EXECUTE, POSITIONS, MARKETS, MARKETS_HISTORY, MOVEMENTS, INTEREST, POSITION_HISTORY}


def ok(response, path: str) -> object:  # noqa: ANN001
    """A 200 answer, checked against the contract's schema for GET `path`."""
    assert response.status_code == 200, response.content
    body = response.json()
    assert_matches_contract("GET", path, body)
    return body


def execute(api: Api, side: str, quantity: str, symbol: str = "SOL") -> None:
    response = api.post(EXECUTE, {"symbol": symbol, "side": side, "quantity": quantity})
    # The contract's 200 has no content.
    assert (response.status_code, response.content) == (200, b""), response.content
    assert "content" not in contract()["paths"][EXECUTE]["post"]["responses"]["200"]


def past_hours(n: int) -> list:
    """The last n whole hours, oldest first (inside every markets/history window)."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    return [now - timedelta(hours=n - i) for i in range(n)]


def by_symbol(rows: list[dict]) -> dict[str, dict]:
    return {row["symbol"]: row for row in rows}


def test_lend_borrow_interest_repay_and_redeem_show_in_positions_and_histories():
    contract()
    alice_account = user_account("alice", SOL="100")
    alice = Api.of(alice_account)
    bob_account = user_account("bob", USDC="10000", SOL="5")
    bob = Api.of(bob_account)

    execute(alice, "Lend", "100")
    execute(bob, "Borrow", "10")
    assert balance(bob_account, "SOL") == D("15")
    [entry_fee] = ok(bob.get(INTEREST), INTEREST)
    assert entry_fee["paymentType"] == "EntryFee" and D(entry_fee["quantity"]) > 0

    hours = past_hours(2)
    for hour in hours:
        assert services.accrue_interest("SOL", hour) == 1

    # Bob's borrow: the entry fee and two hours of interest, each rounded up.
    [position] = ok(bob.get(POSITIONS), POSITIONS)
    owed = -services.position(bob_account, "SOL")
    assert position["symbol"] == "SOL"
    assert D(position["netQuantity"]) == -owed == D(position["netExposureQuantity"])
    assert D(position["netExposureNotional"]) == owed * D(position["markPrice"])
    assert D(position["cumulativeInterest"]) == D("10") - owed
    assert position["imfFunction"] == {"type": "sqrt", "base": "0.2", "factor": "0.0000935"}
    assert (position["imf"], position["mmf"]) == ("0.2", "0.1")
    bob_position = position["id"]

    payments = ok(bob.get(INTEREST, {"sortDirection": "Asc"}), INTEREST)
    assert [p["paymentType"] for p in payments] == ["EntryFee", "Borrow", "Borrow"]
    assert {p["positionId"] for p in payments} == {bob_position}
    assert sum(D(p["quantity"]) for p in payments) == owed - D("10")
    for payment, hour in zip(payments[1:], hours, strict=True):
        history = RateHistory.objects.get(pool_id="SOL", hour=hour)
        assert D(payment["interestRate"]) == history.borrow_rate
        assert payment["timestamp"] == hour.replace(tzinfo=None).isoformat(timespec="milliseconds")
        assert (payment["interval"], payment["marketSymbol"]) == (3600000, "SOL_USDC")

    # Alice's lend: no exposure, two hours earned (rounded down).
    [lend] = ok(alice.get(POSITIONS), POSITIONS)
    lent = services.position(alice_account, "SOL")
    assert D(lend["netQuantity"]) == lent > D("100")
    assert (lend["netExposureQuantity"], lend["netExposureNotional"]) == ("0", "0")
    assert D(lend["cumulativeInterest"]) == lent - D("100")
    earned = ok(alice.get(INTEREST, {"asset": "SOL"}), INTEREST)
    assert [p["paymentType"] for p in earned] == ["Lend", "Lend"]
    assert sum(D(p["quantity"]) for p in earned) == lent - D("100")
    assert D(earned[0]["interestRate"]) == RateHistory.objects.get(hour=hours[1]).lend_rate

    # Bob repays all he owes (a Lend on a borrow), Alice redeems 40 (a Borrow on a lend).
    execute(bob, "Lend", str(owed))
    execute(alice, "Borrow", "40")
    assert ok(bob.get(POSITIONS), POSITIONS) == []
    assert balance(alice_account, "SOL") == D("40")

    moves = ok(bob.get(MOVEMENTS), MOVEMENTS)
    assert [(m["eventType"], D(m["quantity"]), m["source"]) for m in moves] == [
        ("BorrowRepay", owed, "Manual"),
        ("Borrow", D("10"), "Manual"),
    ]
    assert moves[0]["positionQuantity"] == "0"
    assert {m["positionId"] for m in moves} == {bob_position}
    [redeem] = ok(alice.get(MOVEMENTS, {"type": "LendRedeem"}), MOVEMENTS)
    assert D(redeem["positionQuantity"]) == lent - D("40")

    # Position history: Bob's borrow is closed, Alice's lend still open.
    [closed] = ok(bob.get(POSITION_HISTORY, {"state": "Closed"}), POSITION_HISTORY)
    assert (closed["positionId"], closed["side"], closed["quantity"]) == (
        bob_position,
        "Borrow",
        "0",
    )
    assert D(closed["cumulativeInterest"]) == D("10") - owed
    rates_paid = [RateHistory.objects.get(hour=h).borrow_rate for h in hours]
    assert D(closed["avgInterestRate"]) == (sum(rates_paid) / 2).quantize(D("1e-18"))
    assert ok(bob.get(POSITION_HISTORY, {"state": "Open"}), POSITION_HISTORY) == []
    [open_lend] = ok(alice.get(POSITION_HISTORY), POSITION_HISTORY)
    assert (open_lend["side"], D(open_lend["quantity"])) == ("Lend", lent - D("40"))

    # Borrowing again opens a new position with its own id and history.
    execute(bob, "Borrow", "1")
    [again] = ok(bob.get(POSITIONS), POSITIONS)
    assert again["id"] != bob_position
    assert [p["side"] for p in ok(bob.get(POSITION_HISTORY), POSITION_HISTORY)] == [
        "Borrow",
        "Borrow",
    ]
    [fee] = ok(bob.get(INTEREST, {"positionId": again["id"]}), INTEREST)
    assert fee["paymentType"] == "EntryFee"
    old = ok(bob.get(MOVEMENTS, {"positionId": bob_position}), MOVEMENTS)
    assert [m["eventType"] for m in old] == ["BorrowRepay", "Borrow"]
    assert_ledger_clean()


def test_history_filters_and_pages():
    alice = Api.of(user_account("alice", SOL="100", USDC="1000"))
    execute(alice, "Lend", "10")
    execute(alice, "Lend", "5")
    execute(alice, "Lend", "100", symbol="USDC")
    rows = ok(alice.get(MOVEMENTS, {"symbol": "SOL", "sources": "Manual,AutoLend"}), MOVEMENTS)
    assert [m["positionQuantity"] for m in rows] == ["15", "10"]
    assert len({m["positionId"] for m in rows}) == 1
    [first] = ok(alice.get(MOVEMENTS, {"limit": 1, "offset": 2}), MOVEMENTS)
    assert (first["symbol"], first["quantity"]) == ("SOL", "10")
    assert ok(alice.get(MOVEMENTS, {"type": "Borrow"}), MOVEMENTS) == []
    assert ok(alice.get(MOVEMENTS, {"sources": "Liquidation"}), MOVEMENTS) == []
    assert ok(alice.get(MOVEMENTS, {"positionId": "999999"}), MOVEMENTS) == []
    lends = ok(
        alice.get(POSITION_HISTORY, {"side": "Lend", "sortDirection": "Asc"}), POSITION_HISTORY
    )
    assert [p["symbol"] for p in lends] == ["SOL", "USDC"]
    assert ok(alice.get(POSITION_HISTORY, {"side": "Borrow"}), POSITION_HISTORY) == []
    assert ok(alice.get(INTEREST, {"source": "UnrealizedPnl"}), INTEREST) == []
    refused(alice.get(MOVEMENTS, {"limit": 1001}))
    refused(alice.get(MOVEMENTS, {"offset": -1}))
    refused(alice.get(MOVEMENTS, {"sources": "Bogus"}))
    refused(alice.get(MOVEMENTS, {"type": "Deposit"}))
    refused(alice.get(INTEREST, {"sortDirection": "Up"}))
    refused(alice.get(POSITION_HISTORY, {"state": "Pending"}))


def test_markets_publish_each_pool_with_current_rates(client: Client):
    alice = Api.of(user_account("alice", SOL="100"))
    bob = Api.of(user_account("bob", USDC="10000"))
    execute(alice, "Lend", "100")
    execute(bob, "Borrow", "50")
    markets = by_symbol(ok(client.get(MARKETS), MARKETS))
    assert set(markets) == {"USDC", "USDT", "SOL", "BTC", "ETH"}
    sol = markets["SOL"]
    borrowed, lent = services.totals("SOL")
    now = rates.pool_rates(borrowed, lent, rates.MAJOR_POOL)
    assert (D(sol["borrowedQuantity"]), D(sol["lentQuantity"])) == (borrowed, lent)
    assert D(sol["borrowInterestRate"]) == now.borrow_rate > 0
    assert D(sol["lendInterestRate"]) == now.lend_rate > 0
    assert D(sol["utilization"]) == now.utilization
    assert (sol["state"], sol["optimalUtilization"], sol["maxUtilization"]) == (
        "Open",
        "0.7",
        "0.98",
    )
    assert sol["throttleUtilizationBound"] == sol["maxUtilization"]
    assert (sol["stepSize"], markets["USDC"]["stepSize"]) == ("0.000000001", "0.000001")
    assert markets["USDC"]["borrowedQuantity"] == "0"


def test_markets_history_lists_the_hourly_accruals_of_the_window(client: Client):
    alice = Api.of(user_account("alice", SOL="100"))
    bob = Api.of(user_account("bob", USDC="10000"))
    execute(alice, "Lend", "100")
    execute(bob, "Borrow", "20")
    hours = past_hours(3)
    old = hours[0] - timedelta(days=3)
    for hour in [old, *hours]:
        services.accrue_interest("SOL", hour)
    services.accrue_interest("USDC", hours[-1])
    rows = ok(client.get(MARKETS_HISTORY, {"interval": "1d", "symbol": "SOL"}), MARKETS_HISTORY)
    assert [r["timestamp"] for r in rows] == [
        h.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z" for h in hours
    ]
    assert all(D(r["borrowedQuantity"]) > D("20") and r["lentQuantity"] for r in rows)
    week = ok(client.get(MARKETS_HISTORY, {"interval": "1w", "symbol": "SOL"}), MARKETS_HISTORY)
    assert len(week) == 4
    assert len(ok(client.get(MARKETS_HISTORY, {"interval": "1year"}), MARKETS_HISTORY)) == 5
    refused(client.get(MARKETS_HISTORY))
    refused(client.get(MARKETS_HISTORY, {"interval": "1h"}))


def test_refusals_answer_backpacks_codes_and_change_nothing(client: Client):
    alice_account = user_account("alice", SOL="100")
    alice = Api.of(alice_account)
    bob_account = user_account("bob", USDC="1000")
    bob = Api.of(bob_account)
    poor = Api.of(user_account("poor"))
    execute(alice, "Lend", "100")
    execute(bob, "Borrow", "2")
    before = (
        Movement.objects.count(),
        services.position(alice_account, "SOL"),
        services.position(bob_account, "SOL"),
        balance(bob_account, "SOL"),
    )

    def post(api: Api, body: dict, code: str, status: int = 400) -> None:
        refused(api.post(EXECUTE, body), code, status)

    sol = {"symbol": "SOL"}
    post(bob, {**sol, "side": "Lend", "quantity": "5"}, "LEND_REQUIRES_BORROW_REPAY")
    post(alice, {**sol, "side": "Borrow", "quantity": "150"}, "BORROW_REQUIRES_LEND_REDEEM")
    post(poor, {**sol, "side": "Lend", "quantity": "1"}, "INSUFFICIENT_FUNDS")
    post(poor, {**sol, "side": "Borrow", "quantity": "1"}, "INSUFFICIENT_MARGIN")
    post(bob, {**sol, "side": "Borrow", "quantity": "97"}, "INSUFFICIENT_SUPPLY")
    post(bob, {**sol, "side": "Borrow", "quantity": "0"}, "INVALID_QUANTITY")
    post(bob, {**sol, "side": "Borrow", "quantity": "0.0000000001"}, "INVALID_QUANTITY")
    post(bob, {"symbol": "DOGE", "side": "Borrow", "quantity": "1"}, "INVALID_ASSET")
    post(bob, {**sol, "side": "Short", "quantity": "1"}, "INVALID_CLIENT_REQUEST")
    post(bob, {**sol, "side": "Borrow"}, "INVALID_CLIENT_REQUEST")
    post(bob, {**sol, "side": "Borrow", "quantity": "one"}, "INVALID_CLIENT_REQUEST")
    post(bob, {**sol, "side": "Borrow", "quantity": "NaN"}, "INVALID_CLIENT_REQUEST")
    post(bob, {**sol, "side": "Borrow", "quantity": "1", "x": 1}, "INVALID_CLIENT_REQUEST")
    post(bob, {"side": "Borrow", "quantity": "1"}, "INVALID_CLIENT_REQUEST")
    for method, path in (("POST", EXECUTE), ("GET", POSITIONS), ("GET", INTEREST)):
        refused(client.generic(method, path), "UNAUTHORIZED", 401)

    after = (
        Movement.objects.count(),
        services.position(alice_account, "SOL"),
        services.position(bob_account, "SOL"),
        balance(bob_account, "SOL"),
    )
    assert after == before
    assert_ledger_clean()


def test_every_borrow_lend_path_is_routed_and_in_the_contract():
    """The scenarios above validate a 200 of each of these paths (`ok`, `execute`)."""
    ours = {"/" + str(entry.pattern) for entry in urls.urlpatterns}
    assert ours == PATHS
    assert ours <= set(contract()["paths"])
    for path in ours:
        assert resolve(path).func.view_class.__module__ == "lending.api.views"
