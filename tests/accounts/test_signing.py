"""Backpack's signing scheme, checked against the examples in its own documentation."""

import base64
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from accounts import signing

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "reference" / "backpack-openapi.yml"

# The two examples of the contract's Authentication section (also read from the file below).
CANCEL_BODY = {"orderId": 28, "symbol": "BTC_USDT"}
CANCEL_SIGNED = (
    "instruction=orderCancel&orderId=28&symbol=BTC_USDT&timestamp=1614550000000&window=5000"
)
BATCH_BODY = [
    {
        "symbol": "SOL_USDC_PERP",
        "side": "Bid",
        "orderType": "Limit",
        "price": "141",
        "quantity": "12",
    },
    {
        "symbol": "SOL_USDC_PERP",
        "side": "Bid",
        "orderType": "Limit",
        "price": "140",
        "quantity": "11",
    },
]
BATCH_SIGNED = (
    "instruction=orderExecute&orderType=Limit&price=141&quantity=12&side=Bid&symbol=SOL_USDC_PERP"
    "&instruction=orderExecute&orderType=Limit&price=140&quantity=11&side=Bid&symbol=SOL_USDC_PERP"
    "&timestamp=1750793021519&window=5000"
)

# RFC 8032, section 7.1, test 1: a fixed ED25519 key and its signature of the empty message.
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_single_order_cancel_example_is_signed_as_documented():
    assert signing.signing_string("orderCancel", CANCEL_BODY, 1614550000000, 5000) == CANCEL_SIGNED


def test_batch_order_example_is_signed_as_documented():
    assert signing.signing_string("orderExecute", BATCH_BODY, 1750793021519, 5000) == BATCH_SIGNED


def test_a_request_without_parameters_signs_instruction_timestamp_and_window():
    assert (
        signing.signing_string("balanceQuery", {}, 1614550000000, 5000)
        == "instruction=balanceQuery&timestamp=1614550000000&window=5000"
    )


def test_booleans_and_numbers_appear_bare_in_the_signed_string():
    params = signing.parse_json_body(b'{"autoLend": true, "leverageLimit": 2.50, "x": null}')
    assert (
        signing.signing_string("accountUpdate", params, 1, 5000)
        == "instruction=accountUpdate&autoLend=true&leverageLimit=2.50&x=null"
        "&timestamp=1&window=5000"
    )


def _documented_examples() -> list[tuple[object, str]]:
    import yaml

    text = yaml.safe_load(CONTRACT.read_text())["info"]["description"]
    section = text[text.index("# Authentication") : text.index("# Infrastructure")]
    bodies = re.findall(r"```json\n(.*?)```", section, re.S)
    signed = re.findall(r"```text\n(.*?)```", section, re.S)
    # The documentation's first JSON example has its comma misplaced; mend it to parse.
    parsed = [
        json.loads(re.sub(r'(\d)\n(\s*")', r"\1,\n\2", b).replace('",\n}', '"\n}')) for b in bodies
    ]
    return list(zip(parsed, [s.strip() for s in signed], strict=True))


@pytest.mark.skipif(not CONTRACT.exists(), reason=f"contract not found at {CONTRACT}")
def test_every_example_in_the_contract_file_signs_to_its_documented_string():
    examples = _documented_examples()
    assert len(examples) == 2
    for body, expected in examples:
        instruction = expected.split("&", 1)[0].removeprefix("instruction=")
        fields = dict(kv.split("=", 1) for kv in expected.split("&"))
        assert (
            signing.signing_string(
                instruction, body, int(fields["timestamp"]), int(fields["window"])
            )
            == expected
        )


def test_the_documented_key_generation_yields_keys_we_verify():
    # The contract's one-liner: Ed25519PrivateKey.generate(), base64 of the raw seed and key.
    key = ed25519.Ed25519PrivateKey.generate()
    seed = base64.b64encode(key.private_bytes_raw()).decode()
    public = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    signature = signing.sign(seed, CANCEL_SIGNED)
    assert signing.verify(public, signature, [CANCEL_SIGNED])
    assert not signing.verify(public, signature, [CANCEL_SIGNED.replace("28", "29")])


def test_signing_matches_the_rfc_8032_test_vector():
    seed = base64.b64encode(RFC_SEED).decode()
    public = base64.b64encode(RFC_PUBLIC).decode()
    assert base64.b64decode(signing.sign(seed, "")) == RFC_SIGNATURE
    assert signing.verify(public, base64.b64encode(RFC_SIGNATURE).decode(), [""])


def test_malformed_keys_and_signatures_are_signature_errors():
    with pytest.raises(signing.SignatureError):
        signing.verify("not base64!", base64.b64encode(b"x" * 64).decode(), ["m"])
    with pytest.raises(signing.SignatureError):
        signing.verify(
            base64.b64encode(RFC_PUBLIC).decode(), base64.b64encode(b"short").decode(), ["m"]
        )


def test_percent_encoded_form_matches_urlencoding_clients():
    params = {"address": "a b/c", "symbol": "USDC"}
    assert (
        signing.signing_string("withdraw", params, 1, 5000, encode=True)
        == "instruction=withdraw&address=a%20b%2Fc&symbol=USDC&timestamp=1&window=5000"
    )


def test_instruction_names_follow_method_and_path():
    assert signing.instruction_for("GET", "/api/v1/capital") == "balanceQuery"
    assert signing.instruction_for("post", "/api/v1/orders") == "orderExecute"
    assert signing.instruction_for("DELETE", "/api/v1/orders/") == "orderCancelAll"
    assert signing.instruction_for("POST", "/wapi/v1/capital/withdrawals") == "withdraw"
    assert signing.instruction_for("GET", "/api/v1/markets") is None
