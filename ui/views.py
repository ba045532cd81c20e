"""The trading UI: pages (markets, trade, lend and borrow) and small session-authenticated
JSON views under /ui/api/ that call the apps' selectors and services (the public /api is
signed, not session-authenticated). Amounts leave here as decimal strings."""

import json
from decimal import Decimal

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.api.serializers import dec
from accounts.errors import ExchangeError
from lending import rates
from lending import selectors as lending_selectors
from lending import services as lending_services
from settlement import selectors as settlement_selectors
from settlement.models import FundingRate, MarkPrice
from trading import selectors, services
from trading.models import Market

ZERO = Decimal(0)


def _d(value: Decimal | None) -> str | None:
    return None if value is None else dec(value)


def _funding_rates() -> dict[str, Decimal]:
    """The latest hourly funding rate of each perp."""
    out: dict[str, Decimal] = {}
    for row in FundingRate.objects.order_by("market_id", "-interval_end"):
        out.setdefault(row.market_id, row.rate)
    return out


def markets_page(request: HttpRequest) -> HttpResponse:
    funding = _funding_rates()
    marks = {m.market_id: m for m in MarkPrice.objects.all()}
    rows = []
    for market in Market.objects.filter(visible=True).order_by("market_type", "symbol"):
        t = selectors.ticker(market.symbol)
        mark = marks.get(market.symbol)
        rows.append(
            {
                "market": market,
                "ticker": t,
                "change_pct": Decimal(t["priceChangePercent"]) * 100,
                "funding": funding.get(market.symbol),
                "mark": mark.mark_price if mark else None,
            }
        )
    return render(request, "ui/markets.html", {"rows": rows})


def trade_page(request: HttpRequest, symbol: str) -> HttpResponse:
    market = services.market(symbol)
    fees = ZERO, ZERO
    if request.user.is_authenticated:
        f = account_selectors.account_fees(account_services.account_for_user(request.user))
        prefix = "futures" if market.is_perp else "spot"
        fees = f[f"{prefix}MakerFee"], f[f"{prefix}TakerFee"]
    config = {
        "symbol": market.symbol,
        "base": market.base_id,
        "quote": market.quote_id,
        "perp": market.is_perp,
        "tickSize": dec(market.tick_size),
        "stepSize": dec(market.step_size),
        "minQuantity": dec(market.min_quantity),
        "imfBase": _d(market.imf_base) or "0",
        "makerFeeBps": dec(fees[0]),
        "takerFeeBps": dec(fees[1]),
        "loggedIn": request.user.is_authenticated,
    }
    return render(
        request,
        "ui/trade.html",
        {
            "market": market,
            "config": config,
            "markets": Market.objects.filter(visible=True).order_by("market_type", "symbol"),
        },
    )


# Utilization grid of the rate-curve plot.
CURVE_POINTS = [Decimal(i) / 100 for i in range(0, 101, 2)]


def lend_page(request: HttpRequest) -> HttpResponse:
    pools = []
    for row in lending_selectors.markets():
        params = lending_services.params(row.pool)
        # Decimal strings; the page turns them into numbers only to draw.
        curve = [[str(u), str(rates.borrow_rate(u, params))] for u in CURVE_POINTS]
        lend_curve = [[str(u), str(rates.lend_rate(u, params))] for u in CURVE_POINTS]
        pools.append(
            {
                "symbol": row.pool.asset_id,
                "lent": row.lent,
                "borrowed": row.borrowed,
                "utilization": row.rates.utilization * 100,
                "borrow_apy": row.rates.borrow_rate * 100,
                "lend_apy": row.rates.lend_rate * 100,
                "plot": {
                    "borrow": curve,
                    "lend": lend_curve,
                    "now": [
                        str(row.rates.utilization),
                        str(row.rates.borrow_rate),
                        str(row.rates.lend_rate),
                    ],
                    "optimal": str(params.optimal_utilization),
                },
            }
        )
    context: dict = {"pools": pools}
    if request.user.is_authenticated:
        account = account_services.account_for_user(request.user)
        context["positions"] = lending_selectors.positions(account)
        context["interest"] = lending_selectors.interest_payments(account, limit=50)
        context["yields"] = _yields(account)
    return render(request, "ui/lend.html", context)


def _yields(account) -> list:  # noqa: ANN001
    """Stablecoin boost and SOL staking payouts (ledger entries of those kinds)."""
    from accounts.models import LedgerEntry, Posting

    kinds = [
        k
        for k in LedgerEntry.Kind.values
        if any(word in k.lower() for word in ("boost", "staking", "yield"))
    ]
    rows = (
        Posting.objects.filter(account=account, entry__kind__in=kinds)
        .select_related("entry")
        .order_by("-id")[:50]
    )
    return [
        (getattr(p.entry, "memo", "") or p.entry.kind, p.asset_id, p.amount, p.entry.created_at)
        for p in rows
    ]


# ------------------------------------------------------------------ JSON for the pages


def _error(exc: ExchangeError) -> JsonResponse:
    status = getattr(exc, "status", 400) or 400
    return JsonResponse({"code": exc.code, "message": exc.message}, status=status)


def _login_json(view):  # noqa: ANN001, ANN202
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"code": "UNAUTHORIZED", "message": "Log in first"}, status=401)
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    return wrapped


def risk_json(account) -> dict:  # noqa: ANN001
    r = settlement_selectors.valuation(account).risk()
    return {
        "netEquity": dec(r.net_equity),
        "netEquityAvailable": dec(r.net_equity_available),
        "marginFraction": _d(r.margin_fraction),
        "imf": dec(r.imf),
        "mmf": dec(r.mmf),
        "pnlUnrealized": dec(r.pnl_unrealized),
        "liabilities": dec(r.liabilities),
        "collateralValue": dec(r.collateral_value),
    }


def balances_json(account) -> list[dict]:  # noqa: ANN001
    lent = {p.symbol: p.net_quantity for p in lending_selectors.positions(account)}
    out = []
    for b in account_selectors.balances(account):
        position = lent.pop(b.asset_id, ZERO)
        out.append(
            {
                "symbol": b.asset_id,
                "total": dec(b.amount),
                "locked": dec(b.locked),
                "available": dec(b.available),
                "lent": dec(max(position, ZERO)),
                "borrowed": dec(max(-position, ZERO)),
            }
        )
    for symbol, position in sorted(lent.items()):  # everything of it lent (auto lend)
        out.append(
            {
                "symbol": symbol,
                "total": "0",
                "locked": "0",
                "available": "0",
                "lent": dec(max(position, ZERO)),
                "borrowed": dec(max(-position, ZERO)),
            }
        )
    return out


def positions_json(account, symbol: str | None = None) -> list[dict]:  # noqa: ANN001
    out = []
    for view in settlement_selectors.positions(account):
        p, row = view.position, view.row
        if symbol and row.symbol != symbol:
            continue
        out.append(
            {
                "symbol": row.symbol,
                "netQuantity": dec(row.net_quantity),
                "entryPrice": dec(row.entry_price),
                "markPrice": dec(row.mark_price),
                "notional": dec(row.notional),
                "pnlUnrealized": dec(row.pnl_unrealized),
                "estLiquidationPrice": _d(view.est_liquidation_price),
                "cumulativeFunding": dec(p.cumulative_funding),
                "cumulativeInterest": dec(p.cumulative_interest),
                "realizedPnl": dec(p.realized_pnl),
            }
        )
    return out


@require_GET
@_login_json
def state(request: HttpRequest) -> JsonResponse:
    """The signed-in account's private data for a page: balances (with lent and
    borrowed), risk, positions, and for ?symbol= its open orders, order history, fills."""
    account = account_services.account_for_user(request.user)
    symbol = request.GET.get("symbol") or None
    try:
        body: dict = {
            "balances": balances_json(account),
            "risk": risk_json(account),
            "positions": positions_json(account),
        }
        if symbol:
            body["openOrders"] = selectors.open_orders(account, symbol)
            body["orderHistory"] = selectors.order_history(account, symbol, limit=30)
            body["fills"] = selectors.fills(account, symbol, limit=30)
    except ExchangeError as exc:
        return _error(exc)
    return JsonResponse(body)


def _body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise ExchangeError("INVALID_CLIENT_REQUEST", "The body is not JSON") from None
    if not isinstance(data, dict):
        raise ExchangeError("INVALID_CLIENT_REQUEST", "The body is a JSON object")
    return data


@require_POST
@_login_json
def place_order(request: HttpRequest) -> JsonResponse:
    account = account_services.account_for_user(request.user)
    try:
        return JsonResponse(services.place_order(account, _body(request)))
    except ExchangeError as exc:
        return _error(exc)


@require_POST
@_login_json
def cancel_order(request: HttpRequest) -> JsonResponse:
    account = account_services.account_for_user(request.user)
    try:
        data = _body(request)
        if data.get("all"):
            return JsonResponse(
                {"cancelled": services.cancel_all(account, str(data.get("symbol", "")))}
            )
        return JsonResponse(
            services.cancel_order(account, str(data.get("symbol", "")), data.get("orderId"))
        )
    except ExchangeError as exc:
        return _error(exc)
