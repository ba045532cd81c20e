"""Backpack's ED25519 request signing: instruction names and the signed string.

Pure module (no Django). The signed string is
`instruction=<name>&<k=v sorted by key>&timestamp=<ms>&window=<ms>`, where the k=v pairs are
the JSON body fields or the query parameters; a JSON array body (batch orders) contributes one
`instruction=<name>&<sorted k=v>` group per element. Values are the JSON values with the
quotes of strings stripped (`true`, `false`, numbers as written).
"""

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from urllib.parse import quote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

try:  # libsodium's ED25519 (requirements.txt pins PyNaCl)
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey
except ImportError:  # pragma: no cover - cryptography's then
    VerifyKey = None

# (method, path) -> instruction, from Backpack's contract and its official clients.
INSTRUCTIONS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/account"): "accountQuery",
    ("PATCH", "/api/v1/account"): "accountUpdate",
    ("POST", "/api/v1/account/convertDust"): "convertDust",
    ("GET", "/api/v1/account/limits/borrow"): "maxBorrowQuantity",
    ("GET", "/api/v1/account/limits/order"): "maxOrderQuantity",
    ("GET", "/api/v1/account/limits/withdrawal"): "maxWithdrawalQuantity",
    ("GET", "/api/v1/borrowLend/positions"): "borrowLendPositionQuery",
    ("POST", "/api/v1/borrowLend"): "borrowLendExecute",
    ("GET", "/api/v1/capital"): "balanceQuery",
    ("GET", "/api/v1/capital/collateral"): "collateralQuery",
    ("GET", "/wapi/v1/capital/deposits"): "depositQueryAll",
    ("GET", "/wapi/v1/capital/deposit/address"): "depositAddressQuery",
    ("GET", "/wapi/v1/capital/withdrawals"): "withdrawalQueryAll",
    ("POST", "/wapi/v1/capital/withdrawals"): "withdraw",
    ("GET", "/api/v1/order"): "orderQuery",
    ("POST", "/api/v1/order"): "orderExecute",
    ("DELETE", "/api/v1/order"): "orderCancel",
    ("GET", "/api/v1/orders"): "orderQueryAll",
    ("POST", "/api/v1/orders"): "orderExecute",
    ("DELETE", "/api/v1/orders"): "orderCancelAll",
    ("GET", "/api/v1/position"): "positionQuery",
    ("GET", "/wapi/v1/history/borrowLend"): "borrowHistoryQueryAll",
    ("GET", "/wapi/v1/history/interest"): "interestHistoryQueryAll",
    ("GET", "/wapi/v1/history/borrowLend/positions"): "borrowPositionHistoryQueryAll",
    ("GET", "/wapi/v1/history/dust"): "dustHistoryQueryAll",
    ("GET", "/wapi/v1/history/fills"): "fillHistoryQueryAll",
    ("GET", "/wapi/v1/history/funding"): "fundingHistoryQueryAll",
    ("GET", "/wapi/v1/history/orders"): "orderHistoryQueryAll",
    ("GET", "/wapi/v1/history/pnl"): "pnlHistoryQueryAll",
    ("GET", "/wapi/v1/history/settlement"): "settlementHistoryQueryAll",
    ("GET", "/wapi/v1/history/position"): "positionHistoryQueryAll",
    ("GET", "/wapi/v1/history/strategies"): "strategyHistoryQueryAll",
    ("GET", "/wapi/v1/history/rfq"): "rfqHistoryQueryAll",
    ("GET", "/wapi/v1/history/quote"): "quoteHistoryQueryAll",
    ("GET", "/wapi/v1/history/rfq/fill"): "rfqFillHistoryQueryAll",
    ("GET", "/wapi/v1/history/quote/fill"): "quoteFillHistoryQueryAll",
    ("POST", "/api/v1/rfq"): "rfqSubmit",
    ("GET", "/api/v1/rfqs"): "rfqQuery",
    ("POST", "/api/v1/rfq/quote"): "quoteSubmit",
    ("POST", "/api/v1/rfq/accept"): "quoteAccept",
    ("POST", "/api/v1/rfq/refresh"): "rfqRefresh",
    ("POST", "/api/v1/rfq/cancel"): "rfqCancel",
    ("GET", "/api/v1/strategy"): "strategyQuery",
    ("POST", "/api/v1/strategy"): "strategyCreate",
    ("DELETE", "/api/v1/strategy"): "strategyCancel",
    ("GET", "/api/v1/strategies"): "strategyQueryAll",
    ("DELETE", "/api/v1/strategies"): "strategyCancelAll",
    ("POST", "/api/v1/vault/mint"): "vaultMint",
    ("POST", "/api/v1/vault/redeem"): "vaultRedeemRequest",
    ("DELETE", "/api/v1/vault/redeem"): "vaultRedeemCancel",
}
# The WebSocket subscription to private streams signs this instruction.
SUBSCRIBE_INSTRUCTION = "subscribe"


class SignatureError(ValueError):
    """The request's signature data is malformed or does not verify."""


def instruction_for(method: str, path: str) -> str | None:
    return INSTRUCTIONS.get((method.upper(), "/" + path.strip("/")))


def value_text(value: object) -> str:
    """A JSON value as it appears in the signed string: strings unquoted, booleans
    lower-case, numbers as written, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _pairs(params: Mapping[str, object], encode: bool) -> str:
    parts = []
    for key in sorted(params):
        text = value_text(params[key])
        if encode:
            key, text = quote(key, safe=""), quote(text, safe="")
        parts.append(f"{key}={text}")
    return "&".join(parts)


def signing_string(
    instruction: str,
    params: Mapping[str, object] | list[Mapping[str, object]],
    timestamp: int,
    window: int,
    *,
    encode: bool = False,
) -> str:
    """The string a client signs. `encode=True` percent-encodes keys and values the way
    clients built on urlencode (ccxt) do; for plain values both forms are identical."""
    if isinstance(params, list):
        if not all(isinstance(item, Mapping) for item in params):
            raise SignatureError("A batch body is a JSON array of objects")
        groups = [f"instruction={instruction}&{_pairs(item, encode)}" for item in params]
        head = "&".join(g.rstrip("&") for g in groups)
    else:
        pairs = _pairs(params, encode)
        head = f"instruction={instruction}" + (f"&{pairs}" if pairs else "")
    return f"{head}&timestamp={timestamp}&window={window}"


_decoder = json.JSONDecoder(parse_float=Decimal)  # one for all: json.loads builds one per call


def parse_json_body(body: bytes) -> object:
    """Parse a JSON request body keeping numbers exact (Decimal, never float)."""
    if not body.strip():
        return {}
    if isinstance(body, bytes | bytearray):
        body = body.decode(json.detect_encoding(body), "surrogatepass")
    return _decoder.decode(body)


def _b64(text: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{what} is not valid base64") from None
    if len(raw) != size:
        raise SignatureError(f"{what} must be {size} bytes")
    return raw


def public_key_bytes(public_key_b64: str) -> bytes:
    return _b64(public_key_b64, 32, "X-API-Key")


@lru_cache(maxsize=4096)
def _verifier(public_key_b64: str) -> Callable[[bytes, bytes], bool]:
    """verify(signature, message) -> bool for one public key (kept per key: building the
    key object is a fifth of a verification). libsodium's (PyNaCl) when installed: it
    verifies in about half the time of this OpenSSL's, and refuses the non-canonical and
    small-order encodings OpenSSL lets through; cryptography's otherwise."""
    raw = public_key_bytes(public_key_b64)
    if VerifyKey is not None:
        key = VerifyKey(raw)

        def check(signature: bytes, message: bytes) -> bool:
            try:
                key.verify(message, signature)
            except BadSignatureError:
                return False
            return True

        return check
    try:
        openssl_key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return lambda signature, message: False

    def openssl_check(signature: bytes, message: bytes) -> bool:
        try:
            openssl_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return openssl_check


def verify(public_key_b64: str, signature_b64: str, messages: Iterable[str]) -> bool:
    """True when the signature verifies for any of the candidate signed strings (taken
    in turn, each distinct one once)."""
    check = _verifier(public_key_b64)
    signature = _b64(signature_b64, 64, "X-Signature")
    tried = set()
    for message in messages:
        if message not in tried:
            tried.add(message)
            if check(signature, message.encode()):
                return True
    return False


def sign(secret_b64: str, message: str) -> str:
    """Sign with a base64 seed (the API secret); clients and tests use this."""
    seed = base64.b64decode(secret_b64)[:32]
    signature = ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(message.encode())
    return base64.b64encode(signature).decode()


def signed_headers(
    api_key: str,
    secret_b64: str,
    instruction: str,
    params: Mapping[str, object] | list[Mapping[str, object]],
    timestamp: int,
    window: int = 5000,
) -> dict[str, str]:
    """The four headers of a signed request (a client helper, used by tests and tools)."""
    message = signing_string(instruction, params, timestamp, window)
    return {
        "X-API-Key": api_key,
        "X-Signature": sign(secret_b64, message),
        "X-Timestamp": str(timestamp),
        "X-Window": str(window),
    }
