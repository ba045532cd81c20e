from django.urls import path

from ui import views

urlpatterns = [
    path("markets/", views.markets_page, name="markets"),
    path("trade/<str:symbol>/", views.trade_page, name="trade"),
    path("lend/", views.lend_page, name="lend"),
    path("ui/api/state", views.state, name="ui-state"),
    path("ui/api/order", views.place_order, name="ui-order"),
    path("ui/api/cancel", views.cancel_order, name="ui-cancel"),
]
