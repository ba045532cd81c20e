"""Public system endpoints and the signed account, capital and wallet endpoints."""

import time
from datetime import UTC, datetime

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api.base import PublicView, SignedView
from accounts.api.serializers import (
    AccountUpdateSerializer,
    PageSerializer,
    WithdrawalRequestSerializer,
    account_summary,
    dec,
    deposit_json,
    withdrawal_json,
)
from accounts.errors import ExchangeError
from accounts.models import Blockchain


def _valid(serializer_class: type, data: object) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class StatusView(PublicView):
    def get(self, request: Request) -> Response:
        return Response({"status": "Ok"})


class PingView(PublicView):
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse("pong", content_type="text/plain; charset=utf-8")


class TimeView(PublicView):
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(str(int(time.time() * 1000)), content_type="text/plain; charset=utf-8")


class AccountView(SignedView):
    def get(self, request: Request) -> Response:
        account = self.account(request)
        return Response(account_summary(account, selectors.account_fees(account)))

    def patch(self, request: Request) -> Response:
        changes = _valid(AccountUpdateSerializer, request.data)
        services.update_settings(self.account(request), **changes)
        return Response(status=200)


class CapitalView(SignedView):
    def get(self, request: Request) -> Response:
        return Response(
            {
                b.asset_id: {"available": dec(b.available), "locked": dec(b.locked), "staked": "0"}
                for b in selectors.balances(self.account(request))
            }
        )


def _time_range(page: dict) -> dict:
    bounds = {}
    if "from" in page:
        bounds["created_at__gte"] = datetime.fromtimestamp(page["from"] / 1000, UTC)
    if "to" in page:
        bounds["created_at__lte"] = datetime.fromtimestamp(page["to"] / 1000, UTC)
    return bounds


class DepositsView(SignedView):
    def get(self, request: Request) -> Response:
        page = _valid(PageSerializer, request.query_params)
        rows = self.account(request).deposits.filter(**_time_range(page)).order_by("-id")
        rows = rows[page["offset"] : page["offset"] + page["limit"]]
        return Response([deposit_json(d) for d in rows])


class DepositAddressView(SignedView):
    def get(self, request: Request) -> Response:
        blockchain = request.query_params.get("blockchain", "")
        if blockchain not in Blockchain.values:
            raise ExchangeError(
                "INVALID_CLIENT_REQUEST", f"blockchain must be one of {Blockchain.values}"
            )
        return Response({"address": services.deposit_address(self.account(request), blockchain)})


class WithdrawalsView(SignedView):
    def get(self, request: Request) -> Response:
        page = _valid(PageSerializer, request.query_params)
        rows = self.account(request).withdrawals.filter(**_time_range(page)).order_by("-id")
        rows = rows[page["offset"] : page["offset"] + page["limit"]]
        return Response([withdrawal_json(w) for w in rows])

    def post(self, request: Request) -> Response:
        data = _valid(WithdrawalRequestSerializer, request.data)
        withdrawal = services.request_withdrawal(
            self.account(request),
            data["symbol"],
            data["quantity"],
            blockchain=data["blockchain"],
            address=data["address"],
            client_id=data.get("clientId", ""),
        )
        return Response(withdrawal_json(withdrawal))
