"""Schema checks and a deterministic stand-in for the extraction model. Pure functions, no I/O.

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
null; any other value leads to a 206").

Field types: ``type`` as given; a type list or ``anyOf`` with exactly one non-null member takes
that member; several non-null members fall back to ``string`` (docs: "if there is no null, the
field falls back to string"); no ``type`` (or an unknown one) means ``object`` if ``properties``
is present, ``array`` if ``items`` is, else ``string``.

Extraction (:func:`extract`)
============================

The uploaded bytes are decoded as UTF-8 (a leading BOM dropped) and split with
``str.splitlines()``; lines are numbered from 1. A line is a *candidate* when it is either

* ``Label: value``: after surrounding whitespace and an optional list marker (``-``, ``*`` or
  ``+`` followed by a space), everything before the first ``:`` is the label and everything
  after it the value; the label may be in bold (``**Label**: value`` and ``**Label:** value``
  both work); or
* a table row ``| Label | value |`` (the line starts with ``|``): the first cell is the label,
  the second the value; further cells are ignored.

Labels and values are stripped of surrounding whitespace, asterisks and backticks, in any
interleaving (``** `x` **`` gives ``x``). Labels are
compared normalised: case-folded, ``_`` read as a space, runs of whitespace collapsed. A line with
an empty label or an empty value is not a candidate. For every label only its first candidate
line counts.

For each property ``name`` of an object schema, in schema order, the field's labels are ``name``,
``name`` with ``_`` and ``-`` replaced by spaces, the property's ``title`` if any, and each of its
``x-alternativeNames``. The field's value comes from the earliest line among its labels' first
candidates. Values are coerced by the field's type:

* ``string``: the (stripped) value as is;
* ``number``: currency symbols (Unicode category Sc), spaces and ``,`` removed, then a decimal
  literal (``-1234.5``, ``1e3``) read as a float;
* ``integer``: as for ``number``; an integral result becomes an int (``"1,200.00"`` -> 1200);
* ``boolean``: ``true``/``yes``/``y`` -> true, ``false``/``no``/``n`` -> false, case-insensitive;
* ``array``: the value split on ``,`` or ``;``; items stripped, empty items dropped, each coerced
  by the ``items`` schema (``string`` when absent); an array of ``object`` items ignores the
  array's own labels and holds one object extracted from the whole document when any of its
  leaves was found, else it is ``[]``;
* ``object``: its ``properties`` extracted the same way over the whole document;
* ``null``: always null.

A field that is not found is null (primitives), ``[]`` (arrays) or an object of its (missing)
children, never null (docs: "how the API handles missing fields"); a missing field adds no warning.
A found value that cannot be coerced becomes null (an array item: that item becomes null) and
adds a ``nonconformant_output`` warning naming the field path (``customer.name``, ``tags[1]``).
A string outside the field's ``enum``, and a value breaking a pruned constraint, are kept and
add the same warning. When there is any ``nonconformant_output`` warning,
``schema_violation_error`` is ``"Extracted data does not completely conform to the requested
schema: "`` followed by the warning messages joined with ``"; "``; otherwise it is null.

``extraction_metadata`` mirrors ``extraction``: each leaf (a primitive, or an array of
primitives) is ``{"value": <value>, "references": [<reference id>]}`` with ``[]`` when the field
was not found; objects are objects of their children; an array of objects is a list of its items'
metadata. The reference id of line ``n`` is
``str(uuid.uuid5(REFERENCE_NAMESPACE, f"{sha256 hex of the uploaded bytes}:{n}"))``, where
``REFERENCE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "ade_async.testing")``.

``credit_usage`` is ``1.0 + 0.1 * leaves`` rounded to 4 decimals, where leaves counts primitives
and arrays of primitives in the schema (the leaves of an array of objects count once).

Markers (:func:`parse_markers`)
===============================

HTML comments, invisible in rendered Markdown, steer a job: ``<!-- ade-sim: fail REASON -->``
(ends ``failed`` with that ``failure_reason``), ``<!-- ade-sim: cancel -->`` (ends
``cancelled``), ``<!-- ade-sim: latency 2.5 -->`` (seconds from create to the terminal status;
the pending phase stays the configured fraction of the drawn latency, capped at this) and
``<!-- ade-sim: status NAME -->`` (the status reported instead of ``processing``). The first
``fail``/``cancel`` marker decides the outcome; for the others the first valid one counts.
Marker names are case-insensitive; a marker must fit on one line.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, cast
from urllib.parse import unquote

from ..._schema import UNSUPPORTED_KEYWORDS

__all__ = [
    "REFERENCE_NAMESPACE",
    "UNSUPPORTED_SCHEMA_KEYWORDS",
    "Extraction",
    "FieldSpec",
    "Markers",
    "PreparedSchema",
    "SchemaError",
    "extract",
    "index_document",
    "normalize_label",
    "parse_markers",
    "prepare_schema",
    "reference_id",
]

#: Keywords the API rejects under ``strict=true`` and prunes otherwise (ade-api-notes §7): the
#: client checks the same documented list before sending, so both read it from one place.
UNSUPPORTED_SCHEMA_KEYWORDS: Final = UNSUPPORTED_KEYWORDS
#: Namespace of the uuid5 reference ids in ``extraction_metadata``.
REFERENCE_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "ade_async.testing")

_MSG_NOT_OBJECT: Final = "The provided JSON must parse to an object at the root"
_MSG_ROOT_TYPE: Final = 'The provided schema must have "type": "object" for the root'
_MSG_CYCLE: Final = "The provided schema contains recursive local $ref cycles"
_MSG_INVALID: Final = "The provided JSON object was not a valid JSON schema"
#: The most nodes a schema may expand to once its local refs are resolved (the simulator's guard).
_MAX_EXPANDED_NODES: Final = 200_000
_MSG_UNSUPPORTED: Final = "The following schema fields were not supported: "
_MSG_NONCONFORMANT: Final = "Extracted data does not completely conform to the requested schema: "

# Resolved, then removed (ade-api-notes §7).
_REMOVED_KEYWORDS: Final = frozenset(
    {
        "$defs",
        "definitions",
        "$schema",
        "$id",
        "$anchor",
        "$comment",
        "$vocabulary",
        "$dynamicAnchor",
        "$dynamicRef",
        "$recursiveAnchor",
        "$recursiveRef",
    }
)
# Where sub-schemas live, so keyword scans never mistake a property *name* for a keyword.
_SCHEMA_MAPS: Final = ("properties", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS: Final = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES: Final = (
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
# Stripped from both ends of labels and values, in any interleaving: "** `x` **" -> "x".
_DECORATION: Final = "*` \t\r\n\x0b\x0c\u00a0"
_KINDS: Final = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
# Pruned keywords whose constraint the output is still checked against.
_CHECKED_CONSTRAINTS: Final = (
    "const",
    "maxItems",
    "minItems",
    "maxLength",
    "minLength",
    "maximum",
    "minimum",
    "pattern",
    "uniqueItems",
)

Kind: TypeAlias = Literal["string", "number", "integer", "boolean", "array", "object", "null"]


class SchemaError(Exception):
    """The schema is rejected at create time: answer ``status`` with ``message``.

    400 answers carry ``{"error": message}``; 422 answers a FastAPI-style ``detail`` entry.
    """

    def __init__(self, status: Literal[400, 422], message: str) -> None:
        super().__init__(message)
        self.status: Literal[400, 422] = status
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a prepared schema (or the item schema of an array, with ``name == ""``)."""

    name: str
    path: str
    kind: Kind
    labels: tuple[str, ...]
    enum: tuple[Any, ...] | None
    items: FieldSpec | None
    properties: tuple[FieldSpec, ...]
    constraints: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class PreparedSchema:
    """A checked, resolved and pruned schema, ready to extract with. Immutable and shareable."""

    fields: tuple[FieldSpec, ...]
    #: ``nonconformant_schema`` warning messages, in schema order.
    schema_warnings: tuple[str, ...]
    leaf_count: int

    @property
    def credit_usage(self) -> float:
        """Credits a completed job with this schema reports: ``1.0 + 0.1 * leaf_count``."""
        return round(1.0 + 0.1 * self.leaf_count, 4)


@dataclass(frozen=True, slots=True)
class Extraction:
    """What the stand-in model extracted from one document."""

    extraction: dict[str, Any]
    extraction_metadata: dict[str, Any]
    #: ``(code, msg)`` pairs: the schema's ``nonconformant_schema`` warnings, then
    #: ``nonconformant_output`` ones in field order.
    warnings: tuple[tuple[str, str], ...]
    schema_violation_error: str | None


@dataclass(frozen=True, slots=True)
class Markers:
    """The ``<!-- ade-sim: ... -->`` instructions found in a document."""

    outcome: Literal["failed", "cancelled"] | None = None
    failure_reason: str | None = None
    latency: float | None = None
    running_status: str | None = None


# --------------------------------------------------------------------------------------------
# schema preparation


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _shown(path: str) -> str:
    return path or "(root)"


class _Resolver:
    """Resolves local ``$ref`` pointers, detecting cycles; each pointer is resolved once."""

    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self._resolved: dict[str, Any] = {}
        self._active: list[str] = []

    def schema(self, node: Any) -> Any:
        if isinstance(node, bool):
            return {}  # ``true`` accepts anything; read as an untyped (string) field
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" or key in _REMOVED_KEYWORDS:
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: self.schema(sub) for name, sub in value.items()}
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self.schema(sub) for sub in value]
            elif key in _SCHEMA_VALUES:
                out[key] = (
                    [self.schema(sub) for sub in value] if isinstance(value, list) else self.schema(value)
                )
            else:
                out[key] = value
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#"):
            target = self._ref(ref)
            if not isinstance(target, dict):
                raise SchemaError(422, _MSG_INVALID)
            return {**target, **out}
        # A remote $ref is not fetched: it is dropped and the field keeps its other keywords.
        return out

    def _ref(self, ref: str) -> Any:
        if ref in self._resolved:
            return self._resolved[ref]
        if ref in self._active:
            raise SchemaError(422, _MSG_CYCLE)
        self._active.append(ref)
        try:
            resolved = self.schema(self._pointer(ref))
        finally:
            self._active.pop()
        self._resolved[ref] = resolved
        return resolved

    def _pointer(self, ref: str) -> Any:
        fragment = unquote(ref[1:])
        node: Any = self._root
        if not fragment:
            return node
        if not fragment.startswith("/"):
            raise SchemaError(422, _MSG_INVALID)  # a named anchor: not supported, not resolvable
        for token in fragment[1:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise SchemaError(422, _MSG_INVALID)
        return node


def _subschemas(node: dict[str, Any], path: str) -> Iterator[tuple[Any, str]]:
    for key in _SCHEMA_MAPS:
        value = node.get(key)
        if isinstance(value, dict):
            for name, sub in value.items():
                yield sub, _join(path, name) if key == "properties" else path
    for key in _SCHEMA_LISTS:
        value = node.get(key)
        if isinstance(value, list):
            for sub in value:
                yield sub, path
    for key in _SCHEMA_VALUES:
        value = node.get(key)
        subs = value if isinstance(value, list) else [value]
        for sub in subs:
            if isinstance(sub, dict):
                yield sub, f"{path}[]" if key == "items" else path


def _scan(node: Any, path: str, unsupported: set[str], defaults: list[str]) -> None:
    if not isinstance(node, dict):
        return
    unsupported.update(key for key in node if key in UNSUPPORTED_SCHEMA_KEYWORDS)
    if node.get("default") is not None:
        defaults.append(path)
    for sub, sub_path in _subschemas(node, path):
        _scan(sub, sub_path, unsupported, defaults)


def _effective(node: dict[str, Any]) -> dict[str, Any]:
    """Apply the documented type simplifications: type lists and ``anyOf`` with null."""
    declared = node.get("type")
    if isinstance(declared, list):
        non_null = [t for t in declared if t != "null"]
        kind = non_null[0] if len(non_null) == 1 else "string" if non_null else "null"
        return {**node, "type": kind}
    options = node.get("anyOf")
    if declared is None and isinstance(options, list):
        rest = {key: value for key, value in node.items() if key != "anyOf"}
        non_null = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        if len(non_null) == 1:
            return _effective({**non_null[0], **rest})
        # Docs: "if there is no null, the field falls back to string".
        return {**rest, "type": "string" if non_null else "null"}
    return node


def _kind(node: dict[str, Any]) -> Kind:
    declared = node.get("type")
    if isinstance(declared, str) and declared in _KINDS:
        return cast(Kind, declared)
    if "properties" in node:
        return "object"
    if "items" in node:
        return "array"
    return "string"


def normalize_label(text: str) -> str:
    """A label as compared: stripped of whitespace/``*``/backticks, case-folded, ``_`` as space."""
    cleaned = text.strip(_DECORATION).casefold().replace("_", " ")
    return " ".join(cleaned.split())


def _labels(name: str, node: dict[str, Any]) -> tuple[str, ...]:
    raw = [name, name.replace("_", " ").replace("-", " ")]
    title = node.get("title")
    if isinstance(title, str):
        raw.append(title)
    alternatives = node.get("x-alternativeNames")
    if isinstance(alternatives, list):
        raw.extend(alt for alt in alternatives if isinstance(alt, str))
    labels: dict[str, None] = {}
    for label in raw:
        normalized = normalize_label(label)
        if normalized:
            labels[normalized] = None
    return tuple(labels)


def _build(raw: Any, name: str, path: str) -> FieldSpec:
    if isinstance(raw, bool):
        raw = {}
    if not isinstance(raw, dict):
        raise SchemaError(422, _MSG_INVALID)
    node = _effective(raw)
    kind = _kind(node)
    enum = node.get("enum")
    items: FieldSpec | None = None
    properties: tuple[FieldSpec, ...] = ()
    if kind == "array":
        item_schema = node.get("items")
        items = _build(item_schema if isinstance(item_schema, dict | bool) else {}, "", f"{path}[0]")
    elif kind == "object":
        props = node.get("properties", {})
        if not isinstance(props, dict):
            raise SchemaError(422, _MSG_INVALID)
        properties = tuple(_build(sub, child, _join(path, child)) for child, sub in props.items())
    return FieldSpec(
        name=name,
        path=path,
        kind=kind,
        labels=_labels(name, node) if name else (),
        enum=tuple(enum) if isinstance(enum, list) else None,
        items=items,
        properties=properties,
        constraints=tuple((key, node[key]) for key in _CHECKED_CONSTRAINTS if key in node),
    )


def _expanded_nodes(node: Any, memo: dict[int, int]) -> int:
    """The nodes of ``node`` as a tree (shared sub-schemas counted every time they appear)."""
    if not isinstance(node, dict | list):
        return 1
    known = memo.get(id(node))
    if known is None:
        children = node.values() if isinstance(node, dict) else node
        known = memo[id(node)] = 1 + sum(_expanded_nodes(child, memo) for child in children)
    return known


def _leaves(spec: FieldSpec) -> int:
    if spec.kind == "object":
        return sum(_leaves(child) for child in spec.properties)
    if spec.kind == "array" and spec.items is not None and spec.items.kind in ("object", "array"):
        return _leaves(spec.items) if spec.items.kind == "object" else 1
    return 1


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
        resolved = _Resolver(root).schema(root)
        # Resolved refs share their targets, so what follows walks a tree that may be exponentially
        # larger than the text: measure it first, sharing included, in time linear in the text.
        if _expanded_nodes(resolved, {}) > _MAX_EXPANDED_NODES:
            raise SchemaError(422, _MSG_INVALID)
        unsupported: set[str] = set()
        defaults: list[str] = []
        _scan(resolved, "", unsupported, defaults)
        if strict and unsupported:
            raise SchemaError(422, _MSG_UNSUPPORTED + ", ".join(sorted(unsupported)))
        props = resolved.get("properties", {})
        if not isinstance(props, dict):
            raise SchemaError(422, _MSG_INVALID)
        fields = tuple(_build(sub, name, name) for name, sub in props.items())
    except RecursionError:
        raise SchemaError(422, _MSG_INVALID) from None
    warnings = tuple(
        f"Field '{_shown(path)}': a non-null 'default' is not supported and was removed" for path in defaults
    )
    return PreparedSchema(
        fields=fields,
        schema_warnings=warnings,
        leaf_count=sum(_leaves(spec) for spec in fields),
    )


# --------------------------------------------------------------------------------------------
# the document

_LIST_MARKER: Final = re.compile(r"^[-*+]\s+")
_MARKER: Final = re.compile(r"<!--\s*ade-sim:\s*(?P<command>[A-Za-z_-]+)(?:\s+(?P<argument>.*?))?\s*-->")
_SPLIT_ITEMS: Final = re.compile(r"[,;]")
_DECIMAL: Final = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_INTEGER: Final = re.compile(r"^[+-]?\d+$")
_TRUE: Final = frozenset({"true", "yes", "y"})
_FALSE: Final = frozenset({"false", "no", "n"})


def _clean_value(text: str) -> str:
    return text.strip(_DECORATION)


def _candidate(line: str) -> tuple[str, str] | None:
    text = line.strip()
    if text.startswith("|"):
        cells = text.strip("|").split("|")
        if len(cells) < 2:
            return None
        label, value = normalize_label(cells[0]), _clean_value(cells[1])
    else:
        text = _LIST_MARKER.sub("", text, count=1)
        head, sep, tail = text.partition(":")
        if not sep:
            return None
        label, value = normalize_label(head), _clean_value(tail)
    if not label or not value:
        return None
    return label, value


def index_document(document: str) -> dict[str, tuple[int, str]]:
    """Normalised label -> (1-based line number, raw value) of its first candidate line."""
    found: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(document.splitlines(), start=1):
        if ":" not in line and "|" not in line:
            continue  # fast path: most prose lines are not candidates
        hit = _candidate(line)
        if hit is not None and hit[0] not in found:
            found[hit[0]] = (number, hit[1])
    return found


def reference_id(content_sha256: str, line: int) -> str:
    """The stable reference id of ``line`` (1-based) of the document with this sha256."""
    return str(uuid.uuid5(REFERENCE_NAMESPACE, f"{content_sha256}:{line}"))


def parse_markers(document: str) -> Markers:
    """Read the ``<!-- ade-sim: ... -->`` markers of a document (see the module docstring)."""
    if "ade-sim" not in document:
        return Markers()
    outcome: Literal["failed", "cancelled"] | None = None
    failure_reason: str | None = None
    latency: float | None = None
    running_status: str | None = None
    for match in _MARKER.finditer(document):
        command = match.group("command").lower()
        argument = (match.group("argument") or "").strip()
        if command == "fail" and outcome is None:
            outcome, failure_reason = "failed", argument or "Simulated failure"
        elif command == "cancel" and outcome is None:
            outcome = "cancelled"
        elif command == "latency" and latency is None:
            try:
                value = float(argument)
            except ValueError:
                continue
            if math.isfinite(value) and value >= 0:
                latency = value
        elif command == "status" and running_status is None and argument:
            running_status = argument
    return Markers(
        outcome=outcome, failure_reason=failure_reason, latency=latency, running_status=running_status
    )


# --------------------------------------------------------------------------------------------
# extraction


class _Failed(Exception):
    """A found value could not be coerced to the field's type."""


def _number_text(raw: str) -> str:
    return "".join(ch for ch in raw if ch != "," and not ch.isspace() and unicodedata.category(ch) != "Sc")


def _coerce_scalar(kind: Kind, raw: str) -> Any:
    if kind == "string":
        return raw
    if kind == "number":
        text = _number_text(raw)
        if not _DECIMAL.match(text):
            raise _Failed
        value = float(text)
        if not math.isfinite(value):
            raise _Failed
        return value
    if kind == "integer":
        text = _number_text(raw)
        if _INTEGER.match(text):
            return int(text)
        if _DECIMAL.match(text):
            number = float(text)
            if math.isfinite(number) and number.is_integer():
                return int(number)
        raise _Failed
    if kind == "boolean":
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise _Failed
    if kind == "null":
        return None
    raise _Failed  # objects are never coerced from one line


def _violations(spec: FieldSpec, value: Any) -> list[str]:
    """Messages for a coerced, non-null value that breaks the field's enum or pruned constraints."""
    problems: list[str] = []
    if spec.enum is not None and value not in spec.enum:
        problems.append(f"{value!r} is not one of the enum values {list(spec.enum)!r}")
    for keyword, limit in spec.constraints:
        broken = False
        try:
            if keyword == "const":
                broken = value != limit
            elif keyword == "pattern" and isinstance(value, str) and isinstance(limit, str):
                broken = re.search(limit, value) is None
            elif keyword == "maxLength" and isinstance(value, str):
                broken = len(value) > limit
            elif keyword == "minLength" and isinstance(value, str):
                broken = len(value) < limit
            elif keyword == "maximum" and isinstance(value, int | float) and not isinstance(value, bool):
                broken = value > limit
            elif keyword == "minimum" and isinstance(value, int | float) and not isinstance(value, bool):
                broken = value < limit
            elif keyword == "maxItems" and isinstance(value, list):
                broken = len(value) > limit
            elif keyword == "minItems" and isinstance(value, list):
                broken = len(value) < limit
            elif keyword == "uniqueItems" and isinstance(value, list) and limit is True:
                broken = len({json.dumps(item, sort_keys=True) for item in value}) != len(value)
        except (TypeError, re.error):
            continue  # a malformed constraint in a pruned keyword checks nothing
        if broken:
            problems.append(f"{value!r} does not satisfy {keyword}={limit!r}")
    return problems


class _Extractor:
    def __init__(self, document: str, content_sha256: str) -> None:
        self._index = index_document(document)
        self._sha = content_sha256
        self.problems: list[str] = []

    def _lookup(self, spec: FieldSpec) -> tuple[int, str] | None:
        best: tuple[int, str] | None = None
        for label in spec.labels:
            hit = self._index.get(label)
            if hit is not None and (best is None or hit[0] < best[0]):
                best = hit
        return best

    def _problem(self, path: str, message: str) -> None:
        self.problems.append(f"Field '{_shown(path)}': {message}")

    def _check(self, spec: FieldSpec, path: str, value: Any) -> None:
        for message in _violations(spec, value):
            self._problem(path, message)

    def fields(self, specs: tuple[FieldSpec, ...]) -> tuple[dict[str, Any], dict[str, Any], bool]:
        values: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        any_found = False
        for spec in specs:
            value, meta, found = self.field(spec)
            values[spec.name] = value
            metadata[spec.name] = meta
            any_found = any_found or found
        return values, metadata, any_found

    def field(self, spec: FieldSpec) -> tuple[Any, Any, bool]:
        """(value, metadata, found) of one field."""
        if spec.kind == "object":
            return self.fields(spec.properties)
        items = spec.items
        if spec.kind == "array" and items is not None and items.kind == "object":
            value, meta, found = self.fields(items.properties)
            return ([value], [meta], True) if found else ([], [], False)
        hit = self._lookup(spec)
        if hit is None:
            missing: Any = [] if spec.kind == "array" else None
            return missing, {"value": missing, "references": []}, False
        line, raw = hit
        value = self._coerce(spec, spec.path, raw)
        if value is not None:
            self._check(spec, spec.path, value)
        return value, {"value": value, "references": [reference_id(self._sha, line)]}, True

    def _coerce(self, spec: FieldSpec, path: str, raw: str) -> Any:
        if spec.kind != "array":
            try:
                return _coerce_scalar(spec.kind, raw)
            except _Failed:
                self._problem(path, f"could not convert {raw!r} to {spec.kind}")
                return None
        item_spec = spec.items
        result: list[Any] = []
        parts = [_clean_value(part) for part in _SPLIT_ITEMS.split(raw)]
        for index, part in enumerate(p for p in parts if p):
            item_path = f"{path}[{index}]"
            if item_spec is None:
                result.append(part)
                continue
            item = self._coerce(item_spec, item_path, part)
            if item is not None:
                self._check(item_spec, item_path, item)
            result.append(item)
        return result


def extract(document: str, schema: PreparedSchema, *, content_sha256: str) -> Extraction:
    """Extract ``schema``'s fields from ``document`` by the rule of the module docstring.

    Args:
        document: the Markdown, decoded.
        schema: from :func:`prepare_schema`.
        content_sha256: hex sha256 of the uploaded bytes, the seed of the reference ids.
    """
    extractor = _Extractor(document, content_sha256)
    values, metadata, _ = extractor.fields(schema.fields)
    warnings = [("nonconformant_schema", message) for message in schema.schema_warnings]
    warnings.extend(("nonconformant_output", message) for message in extractor.problems)
    violation = _MSG_NONCONFORMANT + "; ".join(extractor.problems) if extractor.problems else None
    return Extraction(
        extraction=values,
        extraction_metadata=metadata,
        warnings=tuple(warnings),
        schema_violation_error=violation,
    )
