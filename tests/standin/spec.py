"""Validates stand-in responses against Twilio's OpenAPI descriptions (needs openapi-schema-validator)."""

from __future__ import annotations

import copy
import json
from email.utils import format_datetime, parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# tests/standin/spec.py -> parents[3] is the directory holding both the repo and shared/.
DEFAULT_SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "twilio-oai"

SPEC_FILES = {"api": "twilio_api_v2010.json", "video": "twilio_video_v1.json",
              "media": "twilio_media_v1.json"}

# Where the spec's schema contradicts its own (real-traffic) examples, the stand-in follows the
# examples; these patches widen exactly those spots.  test_standin_shapes proves each is needed.
RELAXATIONS: dict[str, list[tuple[tuple[str, ...], Any]]] = {
    "api": [
        # Schema says number; every example (and the account-level schema) says string "-0.0025".
        (("components", "schemas", "api.v2010.account.call.call_recording", "properties", "price"),
         {"type": "string", "nullable": True}),
    ],
    "video": [
        # Enum is upper-case "OPUS"; the examples (what Twilio sends) use "opus".
        (("components", "schemas", "recording_enum_codec", "enum"), ["VP8", "H264", "OPUS", "PCMU", "opus"]),
        (("components", "schemas", "room_recording_enum_codec", "enum"),
         ["VP8", "H264", "OPUS", "PCMU", "opus"]),
    ],
    "media": [],
}


@cache
def load_spec(name: str, spec_dir: Path = DEFAULT_SPEC_DIR) -> dict[str, Any]:
    with (spec_dir / SPEC_FILES[name]).open(encoding="utf-8") as handle:
        spec: dict[str, Any] = json.load(handle)
    return spec


def relaxed(spec: dict[str, Any], name: str) -> dict[str, Any]:
    patched = copy.deepcopy(spec)
    for keys, value in RELAXATIONS[name]:
        node = patched
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return patched


def operation(spec: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    op: dict[str, Any] = spec["paths"][path][method]
    return op


def response_schema(spec: dict[str, Any], path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    """The operation's JSON response schema, with the components its $refs point into."""
    content = operation(spec, path, method)["responses"][status]["content"]["application/json"]
    return {**content["schema"], "components": spec["components"]}


def examples(spec: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    content = operation(spec, path, method)["responses"]["200"]["content"]["application/json"]
    return {name: ex["value"] for name, ex in (content.get("examples") or {}).items()}


def _is_rfc2822(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return format_datetime(parsedate_to_datetime(value)) == value
    except (TypeError, ValueError):
        return False


def _is_uri(value: object) -> bool:
    # Twilio marks relative page links ("/2010-04-01/…") as format uri too.
    if not isinstance(value, str):
        return True
    parsed = urlparse(value)
    return bool(parsed.scheme and parsed.netloc) or value.startswith("/")


def format_checker() -> Any:
    import jsonschema

    checker = jsonschema.FormatChecker()
    checker.checks("date-time-rfc-2822")(_is_rfc2822)
    checker.checks("uri")(_is_uri)
    return checker


def validate(body: Any, spec: dict[str, Any], path: str, method: str = "get") -> None:
    """Raise jsonschema.ValidationError unless `body` fits; every declared property must be present."""
    from openapi_schema_validator import OAS30Validator
    from openapi_schema_validator import validate as oas_validate

    oas_validate(body, response_schema(spec, path, method), cls=OAS30Validator,
                 format_checker=format_checker(), enforce_properties_required=True)


def declared_properties(spec: dict[str, Any], schema_name: str) -> set[str]:
    return set(spec["components"]["schemas"][schema_name]["properties"])
