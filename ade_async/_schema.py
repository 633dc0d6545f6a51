"""Extraction schemas as the API wants them: a JSON Schema serialised to a string.

The create endpoint takes ``schema`` as a JSON *string* form field (ade-api-notes §1), so a dict is
serialised here and a string is sent exactly as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import msgspec

__all__ = ["SchemaInput", "schema_to_json"]

#: A JSON Schema as a mapping, or already serialised as a JSON string.
SchemaInput: TypeAlias = "Mapping[str, Any] | str"


def schema_to_json(schema: SchemaInput) -> str:
    """The ``schema`` form field for a schema given as a mapping or a JSON string.

    Raises:
        TypeError: the schema is neither a mapping nor a string, or holds values JSON cannot carry.
    """
    if isinstance(schema, str):
        return schema
    if isinstance(schema, Mapping):
        try:
            return msgspec.json.encode(dict(schema)).decode("utf-8")
        except (TypeError, msgspec.EncodeError) as exc:
            raise TypeError(f"The schema cannot be serialised to JSON: {exc}") from exc
    raise TypeError(f"schema must be a mapping or a JSON string, not {type(schema).__name__}")
