"""Engine commands and results as plain dicts (they cross the channel layer).

Command: {"op": "place" | "cancel" | "cancel_all", "account": id, "symbol": str, ...}
with Backpack's field names and decimals as strings. Result: {"ok": payload} or
{"error": {"code": ..., "message": ...}}.
"""

from accounts.errors import ExchangeError

STATUS = {"TIMEOUT": 503, "SERVER_ERROR": 503, "MAINTENANCE": 503, "RESOURCE_NOT_FOUND": 404}


def ok(payload: object) -> dict:
    return {"ok": payload}


def error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def unwrap(result: dict) -> object:
    """The payload of a result, or raise its error as an ExchangeError."""
    if "error" in result:
        err = result["error"]
        status = STATUS.get(err["code"], 400)
        raise ExchangeError(err["code"], err["message"], status=status)
    return result["ok"]
