from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account_page, name="account"),
    path("account/settings/", views.update_settings, name="account-settings"),
    path("account/keys/", views.create_key, name="api-key-create"),
    path("account/keys/<int:pk>/delete/", views.delete_key, name="api-key-delete"),
    path("account/faucet/", views.faucet, name="faucet"),
    path("account/withdraw/", views.withdraw, name="withdraw"),
    # The trading UI (markets, trade, lend and borrow, and their JSON): the ui app.
    path("", include("ui.urls")),
]
