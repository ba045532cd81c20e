"""Base views: public ones, and signed ones that act for the key's account."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.authentication import BackpackSignatureAuthentication
from accounts.models import Account, ApiKey


class IsSigned(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ApiKey)


class PublicView(APIView):
    authentication_classes: list = []
    permission_classes: list = []


class SignedView(APIView):
    """A view for signed requests; `self.account(request)` is the key's account."""

    authentication_classes = [BackpackSignatureAuthentication]
    permission_classes = [IsSigned]

    @staticmethod
    def account(request: Request) -> Account:
        return request.auth.account
