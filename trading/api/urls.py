"""Backpack's market-data, order and history paths (and the ones answered 501)."""

from django.urls import path

from accounts.api.async_signed import async_endpoint
from trading.api import views
from trading.api.views import not_implemented

urlpatterns = [
    # Public reference and market data.
    path("api/v1/assets", views.AssetsView.as_view()),
    path("api/v1/collateral", views.CollateralView.as_view()),
    path("api/v1/markets", views.MarketsView.as_view()),
    path("api/v1/market", views.MarketView.as_view()),
    path("api/v1/ticker", views.TickerView.as_view()),
    path("api/v1/tickers", views.TickersView.as_view()),
    path("api/v1/depth", views.DepthView.as_view()),
    path("api/v1/trades", views.TradesView.as_view()),
    path("api/v1/trades/history", views.TradesHistoryView.as_view()),
    path("api/v1/klines", views.KlinesView.as_view()),
    path("api/v1/wallets", views.WalletsView.as_view()),
    # Signed: orders and history.
    path(
        "api/v1/order",
        async_endpoint(views.OrderView.as_view(), post=views.place_one, delete=views.cancel_one),
    ),
    path(
        "api/v1/orders",
        async_endpoint(
            views.OrdersView.as_view(), post=views.place_batch, delete=views.cancel_market
        ),
    ),
    path("wapi/v1/history/orders", views.OrderHistoryView.as_view()),
    path("wapi/v1/history/fills", views.FillHistoryView.as_view()),
    # Stocks: no securities are listed (an empty list, for ccxt's load_markets).
    path("api/v1/securities", views.SecuritiesView.as_view()),
    # Not offered: RFQ, vaults, strategies, prediction markets, market sessions.
    path("api/v1/rfq", not_implemented("post")),
    path("api/v1/rfqs", not_implemented("get")),
    path("api/v1/rfq/quote", not_implemented("post")),
    path("api/v1/rfq/accept", not_implemented("post")),
    path("api/v1/rfq/refresh", not_implemented("post")),
    path("api/v1/rfq/cancel", not_implemented("post")),
    path("api/v1/vaults", not_implemented("get")),
    path("api/v1/vaults/history", not_implemented("get")),
    path("api/v1/vault/mint", not_implemented("post")),
    path("api/v1/vault/redeem", not_implemented("post", "delete")),
    path("api/v1/vault/redeems/pending", not_implemented("get")),
    path("api/v1/vault/nav", not_implemented("get")),
    path("api/v1/strategy", not_implemented("get", "post", "delete")),
    path("api/v1/strategies", not_implemented("get", "delete")),
    path("api/v1/prediction", not_implemented("get")),
    path("api/v1/prediction/tags", not_implemented("get")),
    path("api/v1/market-sessions", not_implemented("get")),
    path("wapi/v1/history/rfq", not_implemented("get")),
    path("wapi/v1/history/rfq/fill", not_implemented("get")),
    path("wapi/v1/history/quote", not_implemented("get")),
    path("wapi/v1/history/quote/fill", not_implemented("get")),
    path("wapi/v1/history/strategies", not_implemented("get")),
]
