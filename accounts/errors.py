"""The one exception type services raise for refusals, with Backpack's error codes."""


class ExchangeError(Exception):
    """A refusal the client can act on: rendered as HTTP `status` with
    `{"code": code, "message": message}` (Backpack's error shape)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"ExchangeError({self.code!r}, {self.message!r})"
