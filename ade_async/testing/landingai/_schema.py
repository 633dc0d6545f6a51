"""LandingAI's schema checks and result shape, over the engine's extraction rule. Pure functions.

Schema checks (:func:`prepare_schema`)
======================================

The ``schema`` form field is checked in this order; the first failure is the answer. Messages are
the documented ones (https://docs.landing.ai/ade/ade-extract-troubleshoot, seed 002):

1. not JSON -> 400 ``Invalid JSON schema: <json decoder message>``;
2. JSON, but not an object -> 422 ``The provided JSON must parse to an object at the root``;
3. root ``type`` is not ``"object"`` -> 422 ``The provided schema must have "type": "object" for the root``;
4. local ``$ref`` (``#/$defs/...``, ``#/definitions/...``, any JSON pointer into the document) are
   resolved; a cycle -> 422 ``The provided schema contains recursive local $ref cycles``; a pointer
   to nothing, or ``properties``/a property that is not an object -> 422 ``The provided JSON object
   was not a valid JSON schema``. Sibling keys of a ``$ref`` override the target's. Remote refs
   are dropped. ``$defs``, ``definitions``, ``$schema``, ``$id``, ``$anchor`` and the
   ``$dynamic*``/``$recursive*`` keywords are removed (ade-api-notes §7). The simulator's own
   guard, not a documented limit: refs that expand to more than 200,000 schema nodes (a "billion
   laughs" of refs to refs) -> 422 ``The provided JSON object was not a valid JSON schema``, so a
   hostile schema cannot hang it;
5. keywords the API does not support (:data:`UNSUPPORTED_SCHEMA_KEYWORDS`), found anywhere in a
   schema position (not in property names, enum values or defaults): with ``strict`` -> 422 ``The
   following schema fields were not supported: <sorted, ", "-separated>``; without ``strict``
   they are pruned, and the extracted output is checked against the original constraint
   (``const``, ``maxItems``, ``minItems``, ``maxLength``, ``minLength``, ``maximum``, ``minimum``,
   ``pattern``, ``uniqueItems``; ``allOf``, ``oneOf`` and ``propertyOrdering`` are only pruned).

A non-null ``default`` anywhere adds a ``nonconformant_schema`` warning (docs: "default: removed if
null; any other value leads to a 206"). Field types follow the engine's rule (``_engine._schema``),
which is the documented one ("if there is no null, the field falls back to string").

Results (:func:`extract`)
=========================

Values come from the engine's rule (``_engine._extraction``). ``extraction`` holds them and
``extraction_metadata`` their references. Each problem the rule reports (a value that cannot be
coerced, outside its ``enum``, or breaking a pruned constraint) is a ``nonconformant_output``
warning; when there is any, ``schema_violation_error`` is ``"Extracted data does not completely
conform to the requested schema: "`` followed by the messages joined with ``"; "``, otherwise it is
null. Any warning makes the get answer 206.

``credit_usage`` is ``1.0 + 0.1 * leaves`` rounded to 4 decimals, where leaves counts primitives
and arrays of primitives in the schema (the leaves of an array of objects count once).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from .._engine import (
    MAX_EXPANDED_NODES,
    Extracted,
    PreparedSchema,
    SchemaProblem,
    build_fields,
    count_leaves,
    expanded_nodes,
    resolve_refs,
    scan_schema,
    shown_path,
)
from .._engine import extract as extract_values

__all__ = [
    "UNSUPPORTED_SCHEMA_KEYWORDS",
    "Extraction",
    "SchemaError",
    "credit_usage",
    "extract",
    "prepare_schema",
    "to_extraction",
]

#: Keywords the API rejects under ``strict=true`` and prunes otherwise: "Keywords that cause
#: errors" (ade-api-notes §7). The simulator keeps its own copy of the documented list, so a
#: mistake in the client's copy is caught by the simulator instead of mirrored by it.
UNSUPPORTED_SCHEMA_KEYWORDS: Final = frozenset(
    {
        "allOf",
        "oneOf",
        "const",
        "maxItems",
        "minItems",
        "maxLength",
        "minLength",
        "maximum",
        "minimum",
        "pattern",
        "propertyOrdering",
        "uniqueItems",
    }
)

_MSG_NOT_OBJECT: Final = "The provided JSON must parse to an object at the root"
_MSG_ROOT_TYPE: Final = 'The provided schema must have "type": "object" for the root'
_MSG_CYCLE: Final = "The provided schema contains recursive local $ref cycles"
_MSG_INVALID: Final = "The provided JSON object was not a valid JSON schema"
_MSG_UNSUPPORTED: Final = "The following schema fields were not supported: "
_MSG_NONCONFORMANT: Final = "Extracted data does not completely conform to the requested schema: "


class SchemaError(Exception):
    """The schema is rejected at create time: answer ``status`` with ``message``.

    400 answers carry ``{"error": message}``; 422 answers a FastAPI-style ``detail`` entry.
    """

    def __init__(self, status: Literal[400, 422], message: str) -> None:
        super().__init__(message)
        self.status: Literal[400, 422] = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Extraction:
    """What a completed job carries: the ``ExtractResponse`` members the rule decides."""

    extraction: dict[str, Any]
    extraction_metadata: dict[str, Any]
    #: ``(code, msg)`` pairs: the schema's ``nonconformant_schema`` warnings, then
    #: ``nonconformant_output`` ones in field order.
    warnings: tuple[tuple[str, str], ...]
    schema_violation_error: str | None


@functools.lru_cache(maxsize=1024)
def prepare_schema(text: str, strict: bool) -> PreparedSchema:
    """Check, resolve and prune a ``schema`` form field (see the module docstring for the order).

    Cached: benchmarks send the same schema with every job.

    Raises:
        SchemaError: the API would reject the create; its ``status`` is 400 or 422.
    """
    try:
        root = json.loads(text)
    except ValueError as exc:
        raise SchemaError(400, f"Invalid JSON schema: {exc}") from None
    if not isinstance(root, dict):
        raise SchemaError(422, _MSG_NOT_OBJECT)
    if root.get("type") != "object":
        raise SchemaError(422, _MSG_ROOT_TYPE)
    try:
        resolved = resolve_refs(root)
        # Resolved refs share their targets, so what follows walks a tree that may be exponentially
        # larger than the text: measure it first, sharing included, in time linear in the text.
        if expanded_nodes(resolved) > MAX_EXPANDED_NODES:
            raise SchemaError(422, _MSG_INVALID)
        found = scan_schema(resolved, UNSUPPORTED_SCHEMA_KEYWORDS)
        if strict and found.keywords:
            raise SchemaError(422, _MSG_UNSUPPORTED + ", ".join(sorted(found.keywords)))
        fields = build_fields(resolved.get("properties", {}))
    except SchemaProblem as problem:
        raise SchemaError(422, _MSG_CYCLE if problem.reason == "ref_cycle" else _MSG_INVALID) from None
    except RecursionError:
        raise SchemaError(422, _MSG_INVALID) from None
    warnings = tuple(
        f"Field '{shown_path(path)}': a non-null 'default' is not supported and was removed"
        for path in found.defaults
    )
    return PreparedSchema(fields=fields, leaf_count=count_leaves(fields), schema_warnings=warnings)


def credit_usage(schema: PreparedSchema) -> float:
    """Credits a completed job with this schema reports: ``1.0 + 0.1 * leaf_count``."""
    return round(1.0 + 0.1 * schema.leaf_count, 4)


def to_extraction(found: Extracted, schema: PreparedSchema) -> Extraction:
    """The engine's findings in LandingAI's terms (see the module docstring)."""
    warnings = [("nonconformant_schema", message) for message in schema.schema_warnings]
    warnings.extend(("nonconformant_output", message) for message in found.problems)
    violation = _MSG_NONCONFORMANT + "; ".join(found.problems) if found.problems else None
    return Extraction(
        extraction=found.values,
        extraction_metadata=found.references,
        warnings=tuple(warnings),
        schema_violation_error=violation,
    )


def extract(document: str, schema: PreparedSchema, *, content_sha256: str) -> Extraction:
    """Extract ``schema``'s fields from the Markdown ``document``, as a LandingAI result.

    Args:
        document: the Markdown, decoded.
        schema: from :func:`prepare_schema`.
        content_sha256: hex sha256 of the uploaded bytes, the seed of the reference ids.
    """
    return to_extraction(extract_values(document, schema, content_sha256=content_sha256), schema)
