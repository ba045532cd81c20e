from django.urls import path

from accounts.api import views

urlpatterns = [
    path("api/v1/status", views.StatusView.as_view()),
    path("api/v1/ping", views.PingView.as_view()),
    path("api/v1/time", views.TimeView.as_view()),
    path("api/v1/account", views.AccountView.as_view()),
    path("api/v1/capital", views.CapitalView.as_view()),
    path("wapi/v1/capital/deposits", views.DepositsView.as_view()),
    path("wapi/v1/capital/deposit/address", views.DepositAddressView.as_view()),
    path("wapi/v1/capital/withdrawals", views.WithdrawalsView.as_view()),
]
