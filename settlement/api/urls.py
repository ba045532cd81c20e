"""Backpack's perp and margin paths."""

from django.urls import path

from settlement.api import views

urlpatterns = [
    # Public.
    path("api/v1/markPrices", views.MarkPricesView.as_view()),
    path("api/v1/openInterest", views.OpenInterestView.as_view()),
    path("api/v1/fundingRates", views.FundingRatesView.as_view()),
    # Signed.
    path("api/v1/position", views.PositionView.as_view()),
    path("api/v1/capital/collateral", views.CollateralView.as_view()),
    path("api/v1/account/limits/borrow", views.MaxBorrowView.as_view()),
    path("api/v1/account/limits/order", views.MaxOrderView.as_view()),
    path("api/v1/account/limits/withdrawal", views.MaxWithdrawalView.as_view()),
    path("wapi/v1/history/funding", views.FundingHistoryView.as_view()),
    path("wapi/v1/history/position", views.PositionHistoryView.as_view()),
    path("wapi/v1/history/settlement", views.SettlementHistoryView.as_view()),
]
