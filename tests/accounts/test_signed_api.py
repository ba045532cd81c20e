"""The signed REST endpoints of accounts, and every way a signature can be wrong."""

import base64
import time
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from accounts import services
from accounts.models import Account
from tests.builders import SignedClient, assert_ledger_clean, user_account

pytestmark = pytest.mark.django_db


def _refused(response, code: str = "INVALID_SIGNATURE", status: int = 401) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message"} and body["code"] == code
    return body["message"]


def test_a_signed_balance_query_returns_available_locked_and_staked():
    alice = user_account("alice", USDC="1500.25", SOL="3")
    services.lock(alice, "USDC", Decimal("500"))
    response = SignedClient.for_account(alice).get("/api/v1/capital")
    assert response.status_code == 200
    assert response.json() == {
        "SOL": {"available": "3", "locked": "0", "staked": "0"},
        "USDC": {"available": "1000.25", "locked": "500", "staked": "0"},
    }


def test_unsigned_requests_to_private_endpoints_are_unauthorized(client):
    _refused(client.get("/api/v1/capital"), code="UNAUTHORIZED")


def test_a_stale_timestamp_is_refused():
    api = SignedClient.for_account(user_account("alice"))
    stale = int(time.time() * 1000) - 6000
    assert "expired" in _refused(api.get("/api/v1/capital", timestamp=stale, window=5000))


def test_a_longer_window_accepts_an_older_timestamp():
    api = SignedClient.for_account(user_account("alice"))
    older = int(time.time() * 1000) - 6000
    assert api.get("/api/v1/capital", timestamp=older, window=10000).status_code == 200


def test_a_window_over_sixty_seconds_is_refused():
    api = SignedClient.for_account(user_account("alice"))
    _refused(api.get("/api/v1/capital", window=60001))


def test_a_future_timestamp_is_refused():
    api = SignedClient.for_account(user_account("alice"))
    future = int(time.time() * 1000) + 5000
    assert "future" in _refused(api.get("/api/v1/capital", timestamp=future))


def test_a_signature_by_another_key_is_refused():
    alice = user_account("alice")
    api = SignedClient.for_account(alice)
    other_seed = base64.b64encode(ed25519.Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    forger = SignedClient(api.api_key, other_seed)
    assert "Invalid signature" in _refused(forger.get("/api/v1/capital"))


def test_a_signature_for_other_parameters_is_refused():
    api = SignedClient.for_account(user_account("alice"))
    headers = api.headers("GET", "/wapi/v1/capital/deposit/address", {"blockchain": "Solana"})
    response = api.client.get(
        "/wapi/v1/capital/deposit/address", {"blockchain": "Ethereum"}, headers=headers
    )
    _refused(response)


def test_a_signature_with_the_wrong_instruction_is_refused():
    api = SignedClient.for_account(user_account("alice"))
    _refused(api.get("/api/v1/capital", instruction="accountQuery"))


@pytest.mark.parametrize(
    "header, value",
    [
        ("X-Signature", "not-base64!!"),
        ("X-Signature", base64.b64encode(b"too short").decode()),
        ("X-API-Key", base64.b64encode(b"x" * 31).decode()),
        ("X-Timestamp", "yesterday"),
        ("X-Window", "5s"),
    ],
)
def test_malformed_signature_headers_are_refused(header, value):
    api = SignedClient.for_account(user_account("alice"))
    _refused(api.get("/api/v1/capital", **{header: value}))


def test_a_replayed_signature_is_refused():
    api = SignedClient.for_account(user_account("alice"))
    headers = api.headers("GET", "/api/v1/capital", {})
    assert api.client.get("/api/v1/capital", headers=headers).status_code == 200
    assert "Replayed" in _refused(api.client.get("/api/v1/capital", headers=headers))


def test_an_unknown_or_revoked_key_is_refused():
    alice = user_account("alice")
    api = SignedClient.for_account(alice)
    services.revoke_api_key(alice.api_keys.get())
    assert "revoked" in _refused(api.get("/api/v1/capital"))


def test_account_settings_are_read_and_patched_with_signed_requests():
    alice = user_account("alice")
    api = SignedClient.for_account(alice)
    summary = api.get("/api/v1/account").json()
    assert summary["autoLend"] is False and summary["leverageLimit"] == "10"
    assert (summary["spotMakerFee"], summary["spotTakerFee"]) == ("8", "10")
    assert (summary["futuresMakerFee"], summary["futuresTakerFee"]) == ("2", "5")
    patch = {"autoLend": True, "autoRealizePnl": True, "leverageLimit": "5"}
    assert api.request("PATCH", "/api/v1/account", patch).status_code == 200
    alice.refresh_from_db()
    assert alice.auto_lend and alice.auto_realize_pnl and alice.leverage_limit == Decimal(5)


def test_bad_account_settings_are_refused_and_change_nothing():
    alice = user_account("alice")
    api = SignedClient.for_account(alice)
    _refused(
        api.request("PATCH", "/api/v1/account", {"autoLend": "maybe"}),
        "INVALID_CLIENT_REQUEST",
        400,
    )
    _refused(
        api.request("PATCH", "/api/v1/account", {"leverageLimit": "500"}),
        "MAX_LEVERAGE_REACHED",
        400,
    )
    _refused(
        api.request("PATCH", "/api/v1/account", {"margin": True}), "INVALID_CLIENT_REQUEST", 400
    )
    alice.refresh_from_db()
    assert not alice.auto_lend and alice.leverage_limit == Decimal(10)


def test_deposit_address_is_deterministic_per_account_and_chain():
    alice, bob = user_account("alice"), user_account("bob")
    api = SignedClient.for_account(alice)
    first = api.get("/wapi/v1/capital/deposit/address", {"blockchain": "Solana"}).json()
    again = api.get("/wapi/v1/capital/deposit/address", {"blockchain": "Solana"}).json()
    assert first == again == {"address": services.deposit_address(alice, "Solana")}
    assert services.deposit_address(bob, "Solana") != first["address"]
    assert services.deposit_address(alice, "Ethereum").startswith("0x")
    assert services.deposit_address(alice, "Bitcoin").startswith("bc1q")
    _refused(
        api.get("/wapi/v1/capital/deposit/address", {"blockchain": "Narnia"}),
        "INVALID_CLIENT_REQUEST",
        400,
    )


def test_withdrawal_over_the_api_locks_then_lists():
    alice = user_account("alice", USDC="5000")
    api = SignedClient.for_account(alice)
    body = {
        "address": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
        "blockchain": "Solana",
        "quantity": "2500",
        "symbol": "USDC",
    }
    created = api.request("POST", "/wapi/v1/capital/withdrawals", body)
    assert created.status_code == 200, created.content
    w = created.json()
    assert (w["status"], w["quantity"], w["fee"], w["symbol"]) == ("pending", "2500", "1", "USDC")
    assert api.get("/api/v1/capital").json()["USDC"] == {
        "available": "2499",
        "locked": "2501",
        "staked": "0",
    }
    listed = api.get("/wapi/v1/capital/withdrawals").json()
    assert [x["id"] for x in listed] == [w["id"]]
    deposits = api.get("/wapi/v1/capital/deposits").json()
    assert deposits[0]["quantity"] == "5000" and deposits[0]["status"] == "confirmed"
    assert_ledger_clean()


def test_a_withdrawal_beyond_the_available_balance_is_refused_and_changes_nothing():
    alice = user_account("alice", USDC="100")
    api = SignedClient.for_account(alice)
    body = {"address": "addr", "blockchain": "Solana", "quantity": "100", "symbol": "USDC"}
    _refused(api.request("POST", "/wapi/v1/capital/withdrawals", body), "INSUFFICIENT_FUNDS", 400)
    body["quantity"] = "-5"
    _refused(api.request("POST", "/wapi/v1/capital/withdrawals", body), "INVALID_QUANTITY", 400)
    body["quantity"] = "1.0000001"
    _refused(api.request("POST", "/wapi/v1/capital/withdrawals", body), "INVALID_QUANTITY", 400)
    assert not alice.withdrawals.exists()
    assert services.balance_of(alice, "USDC").locked == 0


def test_public_status_ping_and_time(client):
    assert client.get("/api/v1/status").json() == {"status": "Ok"}
    assert client.get("/api/v1/ping").content == b"pong"
    assert abs(int(client.get("/api/v1/time").content) - time.time() * 1000) < 60_000


def test_unknown_api_paths_answer_in_the_error_shape(client):
    _refused(client.get("/api/v1/nothing-here"), "RESOURCE_NOT_FOUND", 404)


def test_system_accounts_exist():
    assert set(Account.SYSTEM_NAMES) <= set(
        Account.objects.filter(kind="system").values_list("name", flat=True)
    )


def test_a_batch_body_that_is_not_an_array_of_objects_is_refused():
    api = SignedClient.for_account(user_account("alice"))
    headers = api.headers("POST", "/api/v1/orders", [])  # a valid signature, another body
    response = api.client.post(
        "/api/v1/orders", '[1, "x"]', content_type="application/json", headers=headers
    )
    assert "array of objects" in _refused(response)
