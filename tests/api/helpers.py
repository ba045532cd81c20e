"""A signed API client for the endpoint tests, and small order builders."""

import itertools
import time

from accounts.models import Account
from tests.builders import SignedClient

# Each signed request gets its own timestamp: the server refuses a replayed signature, and
# two identical requests within one millisecond would sign the same string.
_clock = itertools.count(int(time.time() * 1000))


def stamp() -> int:
    """A timestamp (ms) no other signed request of this process has used."""
    return max(next(_clock), int(time.time() * 1000))


class Api(SignedClient):
    @classmethod
    def of(cls, account: Account) -> "Api":
        client = cls.for_account(account)
        return cls(client.api_key, client.secret)

    def request(self, method: str, path: str, params=None, **over):  # noqa: ANN001, ANN201
        over.setdefault("timestamp", stamp())
        return super().request(method, path, params, **over)

    def post(self, path: str, body: dict | list):  # noqa: ANN201
        return self.request("POST", path, body)

    def delete(self, path: str, body: dict):  # noqa: ANN201
        return self.request("DELETE", path, body)

    def order(self, side: str, price: str, quantity: str, symbol: str = "SOL_USDC", **extra):  # noqa: ANN201
        body = {
            "symbol": symbol,
            "side": side,
            "orderType": "Limit",
            "price": price,
            "quantity": quantity,
            **extra,
        }
        response = self.post("/api/v1/order", body)
        assert response.status_code == 200, response.content
        return response.json()


def limit(side: str, price: str, quantity: str, symbol: str = "SOL_USDC", **extra) -> dict:
    return {
        "symbol": symbol,
        "side": side,
        "orderType": "Limit",
        "price": price,
        "quantity": quantity,
        **extra,
    }


def refused(response, code: str = "INVALID_CLIENT_REQUEST", status: int = 400) -> str:  # noqa: ANN001
    """Assert Backpack's error shape with the given code and status; return the message."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    return body["message"]
