"""Backpack's borrow-lend paths."""

from django.urls import path

from lending.api import views

urlpatterns = [
    path("api/v1/borrowLend", views.BorrowLendView.as_view()),
    path("api/v1/borrowLend/positions", views.PositionsView.as_view()),
    path("api/v1/borrowLend/markets", views.MarketsView.as_view()),
    path("api/v1/borrowLend/markets/history", views.MarketsHistoryView.as_view()),
    path("wapi/v1/history/borrowLend", views.MovementHistoryView.as_view()),
    path("wapi/v1/history/interest", views.InterestHistoryView.as_view()),
    path("wapi/v1/history/borrowLend/positions", views.PositionHistoryView.as_view()),
]
