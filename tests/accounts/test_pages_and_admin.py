"""Sign-up, log-in, the account page's keys, settings and faucet; Django admin."""

import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model

from accounts import services
from accounts.models import ApiKey, Balance, Deposit, LedgerEntry, Posting, Withdrawal
from tests.builders import SignedClient, assert_ledger_clean, balance, user_account

pytestmark = pytest.mark.django_db


def _signup(client, name: str = "carol"):
    return client.post(
        "/signup/",
        {"username": name, "password1": "a-Long-passw0rd", "password2": "a-Long-passw0rd"},
    )


def test_sign_up_logs_in_and_creates_a_ledger_account(client):
    response = _signup(client)
    assert response.status_code == 302 and response.url == "/account/"
    page = client.get("/account/")
    assert page.status_code == 200 and b"Balances" in page.content
    user = get_user_model().objects.get(username="carol")
    assert services.account_for_user(user).name == f"user:{user.pk}"


def test_log_in_and_out(client):
    user_account("dave")
    assert client.post("/login/", {"username": "dave", "password": "wrong"}).status_code == 200
    assert client.post("/login/", {"username": "dave", "password": "pw-dave"}).status_code == 302
    assert client.get("/account/").status_code == 200
    client.post("/logout/")
    assert client.get("/account/").status_code == 302


def test_an_api_key_secret_is_shown_once_and_only_the_public_key_is_kept(client):
    _signup(client)
    client.post("/account/keys/", {"label": "bot"})
    page = client.get("/account/").content.decode()
    secret = re.search(r'id="new-api-secret">([^<]+)<', page).group(1)
    public = re.search(r'id="new-api-key">([^<]+)<', page).group(1)
    assert secret not in client.get("/account/").content.decode()
    key = ApiKey.objects.get()
    assert key.public_key == public
    assert all(secret not in str(getattr(key, f.attname)) for f in ApiKey._meta.fields)
    assert SignedClient(public, secret).get("/api/v1/capital").status_code == 200
    client.post(f"/account/keys/{key.pk}/delete/")
    assert SignedClient(public, secret).get("/api/v1/capital").status_code == 401


def test_settings_faucet_and_withdraw_from_the_account_page(client):
    _signup(client)
    account = services.account_for_user(get_user_model().objects.get(username="carol"))
    client.post("/account/settings/", {"autoLend": "on", "leverageLimit": "3"})
    account.refresh_from_db()
    assert account.auto_lend and account.leverage_limit == Decimal(3)
    client.post("/account/faucet/", {"symbol": "SOL"})
    assert balance(account, "SOL") == Decimal("100")
    page = client.post(
        "/account/withdraw/",
        {"symbol": "SOL", "blockchain": "Solana", "quantity": "500", "address": "x"},
        follow=True,
    )
    assert b"INSUFFICIENT_FUNDS" in page.content
    assert_ledger_clean()


def test_every_model_has_an_admin_and_the_ledger_is_read_only(admin_client):
    for app in ("accounts", "trading", "lending", "settlement"):
        for model in apps.get_app_config(app).get_models():
            assert admin.site.is_registered(model), model
    request = type("R", (), {"user": get_user_model()(is_superuser=True, is_staff=True)})()
    for model in (LedgerEntry, Posting, Balance):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
    for model in admin.site._registry:
        meta = model._meta
        url = f"/admin/{meta.app_label}/{meta.model_name}/"
        assert admin_client.get(url).status_code == 200, url


def test_admin_adds_a_pending_deposit_and_credits_it_by_action(admin_client):
    alice = user_account("alice")
    admin_client.post(
        "/admin/accounts/deposit/add/",
        {"account": alice.pk, "asset": "BTC", "blockchain": "Bitcoin", "quantity": "0.25"},
    )
    dep = Deposit.objects.get(account=alice)
    assert dep.status == "pending" and balance(alice, "BTC") == 0
    admin_client.post(
        "/admin/accounts/deposit/", {"action": "credit", "_selected_action": [dep.pk]}
    )
    assert balance(alice, "BTC") == Decimal("0.25")
    assert_ledger_clean()


def test_admin_confirms_and_voids_withdrawals_by_action(admin_client):
    alice = user_account("alice", USDC="10000")
    w1, w2 = (
        services.request_withdrawal(
            alice, "USDC", Decimal("3000"), blockchain="Solana", address="a"
        )
        for _ in range(2)
    )
    admin_client.post(
        "/admin/accounts/withdrawal/", {"action": "confirm", "_selected_action": [w1.pk]}
    )
    admin_client.post(
        "/admin/accounts/withdrawal/", {"action": "void", "_selected_action": [w2.pk]}
    )
    assert Withdrawal.objects.get(pk=w1.pk).status == "confirmed"
    assert Withdrawal.objects.get(pk=w2.pk).status == "void"
    assert balance(alice, "USDC") == Decimal("6999")
    assert_ledger_clean()
