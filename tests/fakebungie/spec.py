"""Validators built from Bungie's OpenAPI spec (``data/openapi.json``), for tests.

The spec describes the wire format loosely in three ways this module corrects, so that
validation checks what Bungie really sends:

* ``int64`` values (membership, character and instance ids...) are JSON *strings* on the
  wire (see the real samples in ``data/api``), though the spec says ``integer``;
* ``format: byte`` (``DestinyColor`` channels) are JSON numbers, though the spec says
  ``string``;
* ``nullable: true`` (OpenAPI 3.0) becomes ``anyOf [..., null]`` for JSON Schema 2020-12.

``strict=True`` also adds ``additionalProperties: false`` to every object schema with
``properties``, so a misspelt or invented field in a response the fake *builds* fails.
Real definition tables are checked non-strict: they are newer than the spec.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .items import DATA_DIR

SPEC_URI = "urn:bungie:openapi"
INT64_STRING = {"type": "string", "pattern": "^-?[0-9]+$"}


@functools.cache
def raw_spec() -> dict[str, Any]:
    return orjson.loads((DATA_DIR / "openapi.json").read_bytes())


def _convert(node: Any, strict: bool) -> Any:
    if isinstance(node, list):
        return [_convert(n, strict) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v, strict) if k not in ("x-enum-values", "example", "examples") else v for k, v in node.items()}
    if out.get("type") == "integer" and out.get("format") == "int64":
        out = {**{k: v for k, v in out.items() if k not in ("type", "format")}, **INT64_STRING}
    elif out.get("type") == "string" and out.get("format") == "byte":
        out = {**{k: v for k, v in out.items() if k not in ("type", "format")}, "type": "integer"}
        out.update(minimum=0, maximum=255)
    if strict and "properties" in out and "additionalProperties" not in out and "allOf" not in out:
        out["additionalProperties"] = False
        if "redacted" in out["properties"]:
            # Real definition tables all carry ``blacklisted``, which the spec omits.
            out["properties"] = {**out["properties"], "blacklisted": {"type": "boolean"}}
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _registry(strict: bool) -> Registry:
    spec = raw_spec()
    converted = {"components": _convert(spec["components"], strict)}
    return Registry().with_resource(SPEC_URI, Resource.from_contents(converted, default_specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def schema_validator(name: str, *, strict: bool = True) -> Draft202012Validator:
    """Validator for ``components/schemas/<name>``."""
    if name not in raw_spec()["components"]["schemas"]:
        raise KeyError(name)
    ref = f"{SPEC_URI}#/{_pointer('components', 'schemas', name)}"
    return Draft202012Validator({"$ref": ref}, registry=_registry(strict))


def response_validator(path: str, method: str = "get", *, strict: bool = True) -> Draft202012Validator:
    """Validator for the 200 body of ``path`` (relative to /Platform, as in the spec)."""
    ref = raw_spec()["paths"][path][method]["responses"]["200"]["$ref"]  # "#/components/responses/X"
    name = ref.rsplit("/", 1)[1]
    pointer = _pointer("components", "responses", name, "content", "application/json", "schema")
    return Draft202012Validator({"$ref": f"{SPEC_URI}#/{pointer}"}, registry=_registry(strict))


def error_envelope_validator() -> Draft202012Validator:
    """Any error envelope: the shared envelope fields, no ``Response``."""
    pointer = _pointer("components", "responses", "int32", "content", "application/json", "schema")
    return Draft202012Validator(
        {"allOf": [{"$ref": f"{SPEC_URI}#/{pointer}"}], "required": ["ErrorCode", "ErrorStatus", "Message"]},
        registry=_registry(True),
    )


def definition_schema_name(table: str) -> str | None:
    """``DestinyClassDefinition`` -> ``Destiny.Definitions.DestinyClassDefinition`` (any namespace)."""
    for name in raw_spec()["components"]["schemas"]:
        if name.rsplit(".", 1)[-1] == table and name.startswith("Destiny.Definitions"):
            return name
    return None


def error_codes() -> dict[int, str]:
    """``Exceptions.PlatformErrorCodes``: number -> identifier."""
    values = raw_spec()["components"]["schemas"]["Exceptions.PlatformErrorCodes"]["x-enum-values"]
    return {int(v["numericValue"]): v["identifier"] for v in values}
