"""Browser pages: sign up, account (balances, settings, API keys, deposit, withdraw)."""

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.errors import ExchangeError
from accounts.models import ApiKey, Asset, AssetToken, Blockchain


def home(request: HttpRequest) -> HttpResponse:
    return redirect("account" if request.user.is_authenticated else "login")


def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect("account")
    return render(request, "registration/signup.html", {"form": form})


class SettingsForm(forms.Form):
    autoLend = forms.BooleanField(required=False, label="Auto lend")
    autoRealizePnl = forms.BooleanField(required=False, label="Auto realize PnL")
    autoRepayBorrows = forms.BooleanField(required=False, label="Auto repay borrows")
    autoBorrowSettlements = forms.BooleanField(required=False, label="Auto borrow settlements")
    leverageLimit = forms.DecimalField(min_value=1, max_value=50, decimal_places=2)


@login_required
def account_page(request: HttpRequest) -> HttpResponse:
    account = services.account_for_user(request.user)
    settings_form = SettingsForm(
        initial={api: getattr(account, field) for api, field in services.SETTING_FIELDS.items()}
    )
    context = {
        "account": account,
        "balances": selectors.balances(account),
        "settings_form": settings_form,
        "keys": account.api_keys.filter(revoked_at__isnull=True),
        "new_secret": request.session.pop("new_api_secret", None),
        "addresses": [(c, services.deposit_address(account, c)) for c in Blockchain.values],
        "faucet_assets": Asset.objects.filter(faucet_amount__isnull=False).exclude(faucet_amount=0),
        "tokens": AssetToken.objects.filter(withdraw_enabled=True).select_related("asset"),
        "deposits": account.deposits.all()[:20],
        "withdrawals": account.withdrawals.all()[:20],
    }
    return render(request, "accounts/account.html", context)


def _refusal(request: HttpRequest, exc: ExchangeError) -> None:
    messages.error(request, f"{exc.code}: {exc.message}")


@login_required
@require_POST
def update_settings(request: HttpRequest) -> HttpResponse:
    form = SettingsForm(request.POST)
    if form.is_valid():
        try:
            services.update_settings(services.account_for_user(request.user), **form.cleaned_data)
            messages.success(request, "Settings saved.")
        except ExchangeError as exc:
            _refusal(request, exc)
    else:
        messages.error(request, f"Settings not saved: {form.errors.as_text()}")
    return redirect("account")


@login_required
@require_POST
def create_key(request: HttpRequest) -> HttpResponse:
    key, secret = services.create_api_key(
        services.account_for_user(request.user), request.POST.get("label", "")
    )
    # Shown once, on the next page view, then gone: the server keeps only the public key.
    request.session["new_api_secret"] = {"apiKey": key.public_key, "apiSecret": secret}
    return redirect("account")


@login_required
@require_POST
def delete_key(request: HttpRequest, pk: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=pk, account__user=request.user, revoked_at__isnull=True)
    services.revoke_api_key(key)
    messages.success(request, "API key deleted.")
    return redirect("account")


@login_required
@require_POST
def faucet(request: HttpRequest) -> HttpResponse:
    symbol = request.POST.get("symbol", "")
    try:
        dep = services.faucet(services.account_for_user(request.user), symbol)
        messages.success(request, f"Faucet: received {dep.quantity.normalize()} {symbol}.")
    except ExchangeError as exc:
        _refusal(request, exc)
    return redirect("account")


@login_required
@require_POST
def withdraw(request: HttpRequest) -> HttpResponse:
    try:
        quantity = Decimal(request.POST.get("quantity", ""))
    except InvalidOperation:
        messages.error(request, "INVALID_QUANTITY: quantity must be a number")
        return redirect("account")
    try:
        w = services.request_withdrawal(
            services.account_for_user(request.user),
            request.POST.get("symbol", ""),
            quantity,
            blockchain=request.POST.get("blockchain", ""),
            address=request.POST.get("address", "").strip(),
        )
        messages.success(request, f"Withdrawal #{w.pk} is {w.status}.")
    except ExchangeError as exc:
        _refusal(request, exc)
    return redirect("account")
