"""Signed order endpoints and history: place, query, cancel, batch, and every refusal."""

from decimal import Decimal as D

import pytest

from accounts import services as accounts
from tests.api.helpers import Api, limit, refused
from tests.builders import assert_ledger_clean, balance, user_account
from trading.models import Order, Trade

pytestmark = pytest.mark.django_db


def test_a_limit_order_placed_through_the_api_rests_and_locks_funds():
    alice = user_account("alice", USDC="1000")
    api = Api.of(alice)
    order = api.order("Bid", "100", "2", clientId=42)
    assert order["orderType"] == "Limit" and order["status"] == "New"
    assert (order["price"], order["quantity"], order["executedQuantity"]) == ("100", "2", "0")
    assert order["clientId"] == 42 and isinstance(order["createdAt"], int)
    assert accounts.balance_of(alice, "USDC").locked == D("200")
    assert Order.objects.get(pk=int(order["id"])).account == alice
    assert_ledger_clean()


def test_a_crossing_order_trades_and_shows_in_history_and_fills():
    maker = Api.of(user_account("maker", USDC="1000"))
    taker_account = user_account("taker", SOL="10")
    taker = Api.of(taker_account)
    bid = maker.order("Bid", "100", "2")
    ask = taker.order("Ask", "99", "1.5")
    assert (ask["status"], ask["executedQuantity"], ask["executedQuoteQuantity"]) == (
        "Filled",
        "1.5",
        "150",
    )
    assert balance(taker_account, "USDC") == D("150") - D("0.15")

    history = taker.get("/wapi/v1/history/orders").json()
    assert [(o["id"], o["status"]) for o in history] == [(ask["id"], "Filled")]
    assert "T" in history[0]["createdAt"]  # the history shape: a naive ISO date-time

    fills = taker.get("/wapi/v1/history/fills").json()
    assert [(f["price"], f["quantity"], f["side"], f["isMaker"]) for f in fills] == [
        ("100", "1.5", "Ask", False)
    ]
    assert (fills[0]["fee"], fills[0]["feeSymbol"], fills[0]["orderId"]) == (
        "0.15",
        "USDC",
        ask["id"],
    )
    maker_fills = maker.get("/wapi/v1/history/fills", {"orderId": bid["id"]}).json()
    assert [(f["side"], f["isMaker"], f["fee"], f["feeSymbol"]) for f in maker_fills] == [
        ("Bid", True, "0.0012", "SOL")
    ]
    assert_ledger_clean()


def test_market_order_by_quote_quantity_through_the_api():
    seller = Api.of(user_account("seller", SOL="10"))
    buyer = Api.of(user_account("buyer", USDC="1000"))
    seller.order("Ask", "20", "3")
    response = buyer.post(
        "/api/v1/order",
        {"symbol": "SOL_USDC", "side": "Bid", "orderType": "Market", "quoteQuantity": "40"},
    )
    assert response.status_code == 200, response.content
    order = response.json()
    assert (order["orderType"], order["status"], order["executedQuantity"]) == (
        "Market",
        "Filled",
        "2",
    )
    assert order["quoteQuantity"] == "40" and "price" not in order
    assert_ledger_clean()


def test_numbers_in_the_body_are_read_exactly_never_as_floats():
    alice = user_account("alice", USDC="1000")
    api = Api.of(alice)
    body = '{"symbol":"SOL_USDC","side":"Bid","orderType":"Limit","price":0.3,"quantity":3}'
    params = {"symbol": "SOL_USDC", "side": "Bid", "orderType": "Limit", "price": D("0.3")}
    headers = api.headers("POST", "/api/v1/order", {**params, "quantity": 3})
    response = api.client.generic(
        "POST", "/api/v1/order", body, content_type="application/json", headers=headers
    )
    assert response.status_code == 200, response.content
    assert accounts.balance_of(alice, "USDC").locked == D("0.9")


def test_get_order_by_id_or_client_id_finds_only_open_orders():
    alice = Api.of(user_account("alice", USDC="1000"))
    order = alice.order("Bid", "50", "1", clientId=7)
    by_id = alice.get("/api/v1/order", {"symbol": "SOL_USDC", "orderId": order["id"]})
    assert by_id.status_code == 200 and by_id.json()["id"] == order["id"]
    by_client = alice.get("/api/v1/order", {"symbol": "SOL_USDC", "clientId": "7"})
    assert by_client.json()["id"] == order["id"]
    alice.delete("/api/v1/order", {"symbol": "SOL_USDC", "orderId": order["id"]})
    gone = alice.get("/api/v1/order", {"symbol": "SOL_USDC", "orderId": order["id"]})
    refused(gone, "RESOURCE_NOT_FOUND", 404)


@pytest.mark.parametrize(
    "params",
    [
        {"symbol": "SOL_USDC"},
        {"symbol": "SOL_USDC", "orderId": "1", "clientId": "1"},
        {"orderId": "1"},
        {"symbol": "SOL_USDC", "orderId": "abc"},
        {"symbol": "SOL_USDC", "clientId": str(2**32)},
    ],
)
def test_get_order_needs_symbol_and_exactly_one_reference(params: dict):
    api = Api.of(user_account("alice"))
    refused(api.get("/api/v1/order", params))


def test_another_users_order_is_neither_visible_nor_cancellable():
    alice_account = user_account("alice", USDC="1000")
    alice = Api.of(alice_account)
    mallory = Api.of(user_account("mallory", USDC="1000"))
    order = alice.order("Bid", "10", "1", clientId=3)
    ref = {"symbol": "SOL_USDC", "orderId": order["id"]}
    refused(mallory.get("/api/v1/order", ref), "RESOURCE_NOT_FOUND", 404)
    by_client = {"symbol": "SOL_USDC", "clientId": 3}
    refused(mallory.get("/api/v1/order", by_client), "RESOURCE_NOT_FOUND", 404)
    refused(mallory.delete("/api/v1/order", ref), "RESOURCE_NOT_FOUND", 404)
    assert mallory.delete("/api/v1/orders", {"symbol": "SOL_USDC"}).json() == []
    assert mallory.get("/api/v1/orders").json() == []
    assert mallory.get("/wapi/v1/history/orders").json() == []
    assert Order.objects.get(pk=int(order["id"])).status == "New"
    assert accounts.balance_of(alice_account, "USDC").locked == D("10")
    assert_ledger_clean()


def test_cancel_one_order_by_client_id_releases_its_lock():
    alice_account = user_account("alice", USDC="1000")
    alice = Api.of(alice_account)
    order = alice.order("Bid", "10", "2", clientId=99)
    response = alice.delete("/api/v1/order", {"symbol": "SOL_USDC", "clientId": 99})
    assert response.status_code == 200, response.content
    assert (response.json()["id"], response.json()["status"]) == (order["id"], "Cancelled")
    assert accounts.balance_of(alice_account, "USDC").locked == 0
    refused(alice.delete("/api/v1/order", {"symbol": "SOL_USDC"}))
    refused(alice.delete("/api/v1/order", {"orderId": order["id"]}))
    assert_ledger_clean()


def test_open_orders_filter_by_symbol_and_market_type():
    alice = Api.of(user_account("alice", USDC="10000", BTC="1"))
    sol = alice.order("Bid", "10", "1")
    btc = alice.order("Ask", "90000", "0.001", symbol="BTC_USDC")
    assert [o["id"] for o in alice.get("/api/v1/orders").json()] == [sol["id"], btc["id"]]
    only_btc = alice.get("/api/v1/orders", {"symbol": "BTC_USDC"}).json()
    assert [o["id"] for o in only_btc] == [btc["id"]]
    assert len(alice.get("/api/v1/orders", {"marketType": "SPOT"}).json()) == 2
    assert alice.get("/api/v1/orders", {"marketType": "PERP"}).json() == []
    refused(alice.get("/api/v1/orders", {"marketType": "spot"}))
    refused(alice.get("/api/v1/orders", {"symbol": "NOPE"}), "INVALID_SYMBOL")


def test_a_batch_answers_each_order_or_its_error_with_an_operation_tag():
    alice_account = user_account("alice", USDC="1000")
    alice = Api.of(alice_account)
    response = alice.post(
        "/api/v1/orders",
        [
            limit("Bid", "10", "1"),
            limit("Bid", "10.001", "1"),
            limit("Bid", "11", "1", clientId=5),
            limit("Bid", "1000", "1000"),
        ],
    )
    assert response.status_code == 200, response.content
    results = response.json()
    assert [r["operation"] for r in results] == ["Ok", "Err", "Ok", "Err"]
    assert results[0]["status"] == "New" and results[2]["clientId"] == 5
    assert results[1] == {
        "operation": "Err",
        "code": "INVALID_PRICE",
        "message": results[1]["message"],
    }
    assert results[3]["code"] == "INSUFFICIENT_FUNDS"
    assert Order.objects.filter(account=alice_account).count() == 2
    assert accounts.balance_of(alice_account, "USDC").locked == D("21")
    assert_ledger_clean()


@pytest.mark.parametrize("body", [[], {"symbol": "SOL_USDC"}])
def test_a_batch_must_be_a_non_empty_array(body: object):
    alice = Api.of(user_account("alice", USDC="1000"))
    refused(alice.post("/api/v1/orders", body))
    assert not Order.objects.exists()


def test_a_json_string_is_neither_an_order_nor_a_batch():
    alice = Api.of(user_account("alice", USDC="1000"))
    for path in ("/api/v1/order", "/api/v1/orders"):
        headers = alice.headers("POST", path, {})
        response = alice.client.generic(
            "POST", path, '"orders"', content_type="application/json", headers=headers
        )
        refused(response)
    assert not Order.objects.exists()


def test_cancel_all_in_one_market_leaves_the_others():
    alice_account = user_account("alice", USDC="10000")
    alice = Api.of(alice_account)
    alice.order("Bid", "10", "1")
    alice.order("Bid", "11", "1")
    btc = alice.order("Bid", "50000", "0.01", symbol="BTC_USDC")
    cancelled = alice.delete("/api/v1/orders", {"symbol": "SOL_USDC"}).json()
    assert sorted(o["price"] for o in cancelled) == ["10", "11"]
    assert {o["status"] for o in cancelled} == {"Cancelled"}
    assert [o["id"] for o in alice.get("/api/v1/orders").json()] == [btc["id"]]
    assert accounts.balance_of(alice_account, "USDC").locked == D("500")
    refused(alice.delete("/api/v1/orders", {"symbol": "BTC_USDC", "orderType": "Stop"}))
    refused(alice.delete("/api/v1/orders", {}))
    limited = {"symbol": "BTC_USDC", "orderType": "RestingLimitOrder"}
    assert [o["id"] for o in alice.delete("/api/v1/orders", limited).json()] == [btc["id"]]
    assert_ledger_clean()


@pytest.mark.parametrize(
    "body, code",
    [
        ({"side": "Bid", "orderType": "Limit", "price": "10", "quantity": "1"}, "INVALID_SYMBOL"),
        ({"symbol": "SOL_USDC", "orderType": "Limit", "price": "10", "quantity": "1"}, None),
        (limit("Buy", "10", "1"), None),
        ({**limit("Bid", "10", "1"), "orderType": "Stop"}, None),
        (limit("Bid", "10", "1", timeInForce="GTD"), None),
        (limit("Bid", "10", "1", selfTradePrevention="Never"), None),
        (limit("Bid", "10", "0"), "INVALID_QUANTITY"),
        (limit("Bid", "10", "-1"), "INVALID_QUANTITY"),
        (limit("Bid", "0", "1"), "INVALID_PRICE"),
        (limit("Bid", "-10", "1"), "INVALID_PRICE"),
        (limit("Bid", "10.005", "1"), "INVALID_PRICE"),
        (limit("Bid", "10", "1.005"), "INVALID_QUANTITY"),
        (limit("Bid", "10", "1", symbol="DOGE_USDC"), "INVALID_SYMBOL"),
        (limit("Bid", "ten", "1"), None),
        (limit("Bid", "10", "1", clientId=-1), None),
        ({**limit("Bid", "10", "1"), "price": None}, "INVALID_ORDER"),
        (limit("Bid", "100", "100"), "INSUFFICIENT_FUNDS"),
        ([limit("Bid", "10", "1")], None),
    ],
)
def test_a_bad_order_is_refused_and_changes_nothing(body: object, code: str | None):
    alice_account = user_account("alice", USDC="1000")
    alice = Api.of(alice_account)
    refused(alice.post("/api/v1/order", body), code or "INVALID_CLIENT_REQUEST")
    assert not Order.objects.exists() and not Trade.objects.exists()
    assert accounts.balance_of(alice_account, "USDC").locked == 0
    assert balance(alice_account, "USDC") == D("1000")
    assert_ledger_clean()


def test_order_history_filters_and_pages():
    alice = Api.of(user_account("alice", USDC="10000", BTC="1"))
    first = alice.order("Bid", "10", "1")
    second = alice.order("Bid", "11", "1")
    btc = alice.order("Ask", "90000", "0.001", symbol="BTC_USDC")
    newest_first = [o["id"] for o in alice.get("/wapi/v1/history/orders").json()]
    assert newest_first == [btc["id"], second["id"], first["id"]]
    oldest = alice.get("/wapi/v1/history/orders", {"sortDirection": "Asc", "limit": 1}).json()
    assert [o["id"] for o in oldest] == [first["id"]]
    page = alice.get("/wapi/v1/history/orders", {"limit": 1, "offset": 1}).json()
    assert [o["id"] for o in page] == [second["id"]]
    by_symbol = alice.get("/wapi/v1/history/orders", {"symbol": "BTC_USDC"}).json()
    assert [o["id"] for o in by_symbol] == [btc["id"]]
    by_id = alice.get("/wapi/v1/history/orders", {"orderId": first["id"]}).json()
    assert [o["id"] for o in by_id] == [first["id"]]
    assert alice.get("/wapi/v1/history/orders", {"marketType": "PERP"}).json() == []


def test_fill_history_filters_by_time_order_type_and_pages():
    maker = Api.of(user_account("maker", USDC="10000"))
    taker = Api.of(user_account("taker", SOL="10"))
    maker.order("Bid", "100", "1")
    maker.order("Bid", "99", "1")
    ask = taker.order("Ask", "99", "2")
    fills = taker.get("/wapi/v1/history/fills").json()
    assert [f["price"] for f in fills] == ["99", "100"]
    trades = list(Trade.objects.order_by("id"))
    first_ms, last_ms = trades[0].timestamp, trades[-1].timestamp
    in_window = taker.get("/wapi/v1/history/fills", {"from": first_ms, "to": last_ms}).json()
    assert len(in_window) == 2
    assert taker.get("/wapi/v1/history/fills", {"from": last_ms + 1}).json() == []
    assert taker.get("/wapi/v1/history/fills", {"to": first_ms - 1}).json() == []
    assert len(taker.get("/wapi/v1/history/fills", {"fillType": "User"}).json()) == 2
    assert taker.get("/wapi/v1/history/fills", {"fillType": "Liquidation"}).json() == []
    paged = taker.get("/wapi/v1/history/fills", {"limit": 1, "offset": 1}).json()
    assert [f["price"] for f in paged] == ["100"]
    by_order = taker.get("/wapi/v1/history/fills", {"orderId": ask["id"]}).json()
    assert len(by_order) == 2
    assert taker.get("/wapi/v1/history/fills", {"symbol": "BTC_USDC"}).json() == []


@pytest.mark.parametrize("path", ["/wapi/v1/history/orders", "/wapi/v1/history/fills"])
@pytest.mark.parametrize(
    "params, code",
    [
        ({"limit": 0}, None),
        ({"limit": 1001}, None),
        ({"limit": "x"}, None),
        ({"offset": -1}, None),
        ({"orderId": "abc"}, None),
        ({"sortDirection": "Up"}, None),
        ({"marketType": "Spot"}, None),
        ({"symbol": "NOPE"}, "INVALID_SYMBOL"),
    ],
)
def test_history_refuses_bad_parameters(path: str, params: dict, code: str | None):
    api = Api.of(user_account("alice"))
    refused(api.get(path, params), code or "INVALID_CLIENT_REQUEST")


@pytest.mark.parametrize("params", [{"from": "yesterday"}, {"to": -5}, {"fillType": "Robot"}])
def test_fill_history_refuses_bad_time_range_or_fill_type(params: dict):
    api = Api.of(user_account("alice"))
    refused(api.get("/wapi/v1/history/fills", params))


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/order"),
        ("POST", "/api/v1/order"),
        ("DELETE", "/api/v1/order"),
        ("GET", "/api/v1/orders"),
        ("POST", "/api/v1/orders"),
        ("DELETE", "/api/v1/orders"),
        ("GET", "/wapi/v1/history/orders"),
        ("GET", "/wapi/v1/history/fills"),
    ],
)
def test_order_endpoints_refuse_unsigned_requests(client, method: str, path: str):
    refused(client.generic(method, path), "UNAUTHORIZED", 401)


def test_the_order_endpoints_sign_with_backpacks_instruction_names():
    alice = Api.of(user_account("alice", USDC="100"))
    wrong = alice.request("GET", "/api/v1/orders", {}, instruction="orderQuery")
    refused(wrong, "INVALID_SIGNATURE", 401)
    right = alice.request("GET", "/api/v1/orders", {}, instruction="orderQueryAll")
    assert right.status_code == 200
