from django.conf import settings
from django.http import HttpRequest


def exchange(request: HttpRequest) -> dict:
    return {"EXCHANGE_TESTNET": settings.EXCHANGE_TESTNET}
