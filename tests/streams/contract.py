"""Stream payloads against Backpack's asyncapi contract (backpack-asyncapi.yml, beside the
repo): the event's schema with its types, and no key the contract does not list."""

from functools import cache
from pathlib import Path

import pytest

ASYNCAPI = Path(__file__).resolve().parents[3] / "shared" / "reference" / "backpack-asyncapi.yml"


@cache
def _contract() -> dict:
    if not ASYNCAPI.exists():
        pytest.skip(f"Backpack's asyncapi contract is not at {ASYNCAPI}: nothing to check")
    import yaml

    return yaml.safe_load(ASYNCAPI.read_text())


def assert_event_matches(schema_name: str, data: dict) -> None:
    """`data` (parsed with exact decimals) is a valid `schema_name` of the contract."""
    import jsonschema

    schema = dict(_contract()["components"]["schemas"][schema_name])
    extra = set(data) - set(schema["properties"])
    assert not extra, f"{schema_name}: keys outside the contract {sorted(extra)}"
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, f"{schema_name}: " + "; ".join(errors)
