"""Extraction schemas: from what users write to a checked JSON Schema document.

Users may give:

* a mapping (a JSON Schema as a dict), or a JSON string, sent as given;
* a msgspec ``Struct`` type (or a dataclass or TypedDict), turned into JSON Schema by msgspec;
* a pydantic model class, turned into JSON Schema by its ``model_json_schema()``.

:func:`check_schema` makes the checks every vendor in scope documents, so a batch with a bad
schema fails before any job is created: the root must be an object with ``"type": "object"``;
``properties`` must map names to schemas (objects); local ``$ref`` cycles are refused; and the
keywords a provider names as forbidden are refused too (LandingAI ADE's strict mode). A schema
nested too deeply to be read or written (thousands of levels) is refused with a
:class:`SchemaError` too, never a crash. A provider adds its own rules on top and encodes the
document the way its create takes it (:func:`encode_schema`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final, TypeAlias

import msgspec

from ._errors import SchemaError

__all__ = ["SchemaInput", "check_schema", "encode_schema", "schema_to_dict", "schema_to_json", "walk_schema"]

#: A JSON Schema as a mapping or JSON string, or a type to derive one from (msgspec Struct,
#: dataclass, TypedDict, pydantic model class).
SchemaInput: TypeAlias = "Mapping[str, Any] | str | type"

# Keywords whose values are schemas, maps of schemas, or lists of schemas (where to look deeper).
_SCHEMA_VALUED: Final = frozenset({"items", "additionalProperties", "not", "contains", "propertyNames"})
_SCHEMA_MAPS: Final = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_SCHEMA_LISTS: Final = frozenset({"anyOf", "allOf", "oneOf", "prefixItems"})


def schema_to_json(schema: SchemaInput) -> str:
    """The ``schema`` form field, without checks (``create_job`` sends what it is given).

    Raises:
        TypeError: the schema is neither a mapping, a string, nor a type a schema can be made of.
    """
    if isinstance(schema, str):
        return schema
    try:
        return msgspec.json.encode(schema_to_dict(schema)).decode("utf-8")
    except SchemaError as exc:
        raise TypeError(str(exc)) from exc
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"The schema cannot be serialised to JSON: {exc}") from exc


def schema_to_dict(schema: SchemaInput) -> dict[str, Any]:
    """The schema as a JSON Schema dict.

    Raises:
        SchemaError: a string that is not JSON or not an object, a type no schema can be made of,
            or a schema nested too deeply to be read.
        TypeError: an argument of another kind.
    """
    try:
        return _to_dict(schema)
    except RecursionError:
        raise SchemaError(
            "The schema is nested too deeply to be checked or sent", problems=["nested too deeply"]
        ) from None


def _to_dict(schema: SchemaInput) -> dict[str, Any]:
    if isinstance(schema, str):
        try:
            decoded = msgspec.json.decode(schema)
        except msgspec.DecodeError as exc:
            raise SchemaError(f"The schema is not valid JSON: {exc}", problems=["not valid JSON"]) from exc
        if not isinstance(decoded, dict):
            raise SchemaError(
                "The provided JSON must parse to an object at the root", problems=["root is not an object"]
            )
        return decoded
    if isinstance(schema, Mapping):
        return dict(schema)
    if isinstance(schema, type):
        model_json_schema = getattr(schema, "model_json_schema", None)
        if callable(model_json_schema):  # a pydantic model class
            result: dict[str, Any] = model_json_schema()
            return result
        try:
            return _inline_root(msgspec.json.schema(schema))
        except TypeError as exc:
            raise SchemaError(
                f"No JSON Schema can be made from {schema.__name__}: {exc}", problems=[str(exc)]
            ) from exc
    raise TypeError(
        f"schema must be a mapping, a JSON string, a msgspec Struct or pydantic model class, "
        f"not {type(schema).__name__}"
    )


def check_schema(
    schema: SchemaInput, *, forbidden: frozenset[str] = frozenset(), vendor: str = "the API"
) -> dict[str, Any]:
    """The schema as a JSON Schema document, after the checks every vendor makes.

    Args:
        schema: what the user gave.
        forbidden: keywords the vendor refuses (anywhere in the schema).
        vendor: how messages name the vendor.

    Raises:
        SchemaError: the vendor would refuse this schema (``problems`` lists why).
    """
    try:
        document = schema_to_dict(schema)
        problems = list(_root_problems(document))
        problems.extend(_malformed_properties(document, ""))
        problems.extend(_ref_cycles(document))
        problems.extend(
            f"unsupported keyword {keyword!r} at {path or 'the root'}"
            for keyword, path in _keywords(document, "", forbidden)
        )
    except RecursionError:
        # msgspec and the checks below recurse per level; a hostile schema must not crash the caller.
        raise SchemaError(
            "The schema is nested too deeply to be checked or sent", problems=["nested too deeply"]
        ) from None
    if problems:
        raise SchemaError(
            f"The schema would be refused by {vendor}: " + "; ".join(problems), problems=problems
        )
    return document


def encode_schema(document: dict[str, Any]) -> str:
    """A checked schema document as JSON text.

    Raises:
        SchemaError: it cannot be serialised (or is nested too deeply to be).
    """
    try:
        return msgspec.json.encode(document).decode("utf-8")
    except RecursionError:
        raise SchemaError(
            "The schema is nested too deeply to be checked or sent", problems=["nested too deeply"]
        ) from None
    except (TypeError, msgspec.EncodeError) as exc:
        raise SchemaError(f"The schema cannot be serialised to JSON: {exc}", problems=[str(exc)]) from exc


def walk_schema(node: Any, path: str = "") -> Iterator[tuple[dict[str, Any], str]]:
    """Every subschema of ``node`` (itself included) with its path, for a provider's own rules."""
    if not isinstance(node, dict):
        return
    yield node, path
    for key, value in node.items():
        for child, where in _subschemas(key, value, f"{path}.{key}" if path else key):
            yield from walk_schema(child, where)


def _inline_root(generated: dict[str, Any]) -> dict[str, Any]:
    """msgspec puts a Struct behind ``{"$ref": "#/$defs/Name"}``; the API needs the object at the root."""
    ref = generated.get("$ref")
    defs = dict(generated.get("$defs", {}))
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return generated
    root = dict(defs.pop(ref.removeprefix("#/$defs/")))
    if defs:
        root["$defs"] = defs
    return root


def _root_problems(document: dict[str, Any]) -> Iterator[str]:
    if document.get("type") != "object":
        yield 'the root must have "type": "object"'


def _malformed_properties(node: Any, path: str) -> Iterator[str]:
    """Where ``properties`` is not a map of schemas (the API: "not a valid JSON schema")."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key == "properties":
            if not isinstance(value, dict):
                yield f"{where} is not an object"
                continue
            for name, sub in value.items():
                if not isinstance(sub, dict):
                    yield f"{where}.{name} is not a schema (an object)"
                else:
                    yield from _malformed_properties(sub, f"{where}.{name}")
        else:
            for sub, sub_where in _subschemas(key, value, where):
                yield from _malformed_properties(sub, sub_where)


def _keywords(node: Any, path: str, forbidden: frozenset[str]) -> Iterator[tuple[str, str]]:
    """Every forbidden keyword in a schema, with where it is (property names are not keywords)."""
    if not isinstance(node, dict) or not forbidden:
        return
    for key, value in node.items():
        if key in forbidden:
            yield key, path
        where = f"{path}.{key}" if path else key
        for sub, sub_where in _subschemas(key, value, where):
            yield from _keywords(sub, sub_where, forbidden)
        if key == "items" and isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _keywords(sub, f"{where}[{i}]", forbidden)


def _subschemas(key: str, value: Any, where: str) -> Iterator[tuple[Any, str]]:
    """The schemas one keyword holds, each with where it is: the one walk both checks share."""
    if key in _SCHEMA_VALUED:
        yield value, where
    elif key in _SCHEMA_MAPS and isinstance(value, dict):
        for name, sub in value.items():
            yield sub, f"{where}.{name}"
    elif key in _SCHEMA_LISTS and isinstance(value, list):
        for i, sub in enumerate(value):
            yield sub, f"{where}[{i}]"


def _local_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/"):
                yield value
            else:
                yield from _local_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _local_refs(item)


def _ref_cycles(document: dict[str, Any]) -> Iterator[str]:
    """A refusal if local ``$ref`` s form a cycle (the API resolves refs and refuses recursion)."""
    defs: dict[str, Any] = {}
    for section in ("$defs", "definitions"):
        block = document.get(section)
        if isinstance(block, dict):
            defs.update({f"#/{section}/{name}": sub for name, sub in block.items()})
    graph = {ref: set(_local_refs(sub)) for ref, sub in defs.items()}
    visiting: set[str] = set()
    done: set[str] = set()

    def cyclic(ref: str) -> bool:
        if ref in done or ref not in graph:
            return False
        if ref in visiting:
            return True
        visiting.add(ref)
        found = any(cyclic(nxt) for nxt in graph[ref])
        visiting.discard(ref)
        done.add(ref)
        return found

    if any(cyclic(ref) for ref in graph):
        yield "the schema contains recursive local $ref cycles"
