"""URL map: Backpack's REST paths, the schema, admin and the browser pages."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts.api.errors import json_error

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("lending.api.urls")),
    path("", include("settlement.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
]


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(("/api/", "/wapi/")):
        return json_error("RESOURCE_NOT_FOUND", f"No endpoint at {request.path}", 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(("/api/", "/wapi/")):
        return json_error("SERVER_ERROR", "Internal server error", 500)
    from django.views.defaults import server_error

    return server_error(request)
