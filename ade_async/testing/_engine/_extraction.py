"""The deterministic stand-in for an extraction model: text + a prepared schema -> values.

Pure functions, no I/O, no vendor: every simulated vendor extracts with this rule, whatever shape
its answer takes (a vendor module wraps :class:`Extracted` in its own result body). The document is
text: Markdown as uploaded, or the text of a PDF once a vendor module has one.

The rule
========

The uploaded bytes are decoded as UTF-8 (a leading BOM dropped) and split with
``str.splitlines()``; lines are numbered from 1. A line is a *candidate* when it is either

* ``Label: value``: after surrounding whitespace and an optional list marker (``-``, ``*`` or
  ``+`` followed by a space), everything before the first ``:`` is the label and everything
  after it the value; the label may be in bold (``**Label**: value`` and ``**Label:** value``
  both work); or
* a table row ``| Label | value |`` (the line starts with ``|``): the first cell is the label,
  the second the value; further cells are ignored.

Labels and values are stripped of surrounding whitespace, asterisks and backticks, in any
interleaving (``** `x` **`` gives ``x``). Labels are compared normalised: case-folded, ``_`` read
as a space, runs of whitespace collapsed. A line with an empty label or an empty value is not a
candidate. For every label only its first candidate line counts.

For each property of an object schema, in schema order, the field's value comes from the earliest
line among its labels' first candidates (the labels are listed in ``_schema``). Values are coerced
by the field's type:

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
children, never null; a missing field is no problem. A found value that cannot be coerced becomes
null (an array item: that item becomes null) and adds a *problem* naming the field path
(``Field 'customer.name': ...``, ``Field 'tags[1]': ...``). A string outside the field's ``enum``,
and a value breaking one of its checked constraints, are kept and add a problem too. How problems
reach the client is the vendor's business (LandingAI: warnings and a 206).

``references`` mirrors ``values``: each leaf (a primitive, or an array of primitives) is
``{"value": <value>, "references": [<reference id>]}`` with ``[]`` when the field was not found;
objects are objects of their children; an array of objects is a list of its items' references.
The reference id of line ``n`` is
``str(uuid.uuid5(REFERENCE_NAMESPACE, f"{sha256 hex of the uploaded bytes}:{n}"))``, where
``REFERENCE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "ade_async.testing")``.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any, Final

from ._schema import DECORATION, FieldSpec, Kind, PreparedSchema, normalize_label, shown_path

__all__ = ["REFERENCE_NAMESPACE", "Extracted", "extract", "index_document", "reference_id"]

#: Namespace of the uuid5 reference ids.
REFERENCE_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "ade_async.testing")


@dataclass(frozen=True, slots=True)
class Extracted:
    """What the stand-in model found in one document for one schema.

    A vendor module keeps it (``Engine.extraction_of`` does, once per job) and shapes it into its
    own result: LandingAI serves ``values`` as ``extraction`` and ``references`` as
    ``extraction_metadata`` and turns ``problems`` into warnings.
    """

    #: The extracted values, shaped like the schema.
    values: dict[str, Any]
    #: Per leaf, the value and the ids of the lines it came from (see the module docstring).
    references: dict[str, Any]
    #: ``Field '<path>': <what is wrong>`` messages, in field order.
    problems: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# the document

_LIST_MARKER: Final = re.compile(r"^[-*+]\s+")
_SPLIT_ITEMS: Final = re.compile(r"[,;]")
_DECIMAL: Final = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_INTEGER: Final = re.compile(r"^[+-]?\d+$")
_TRUE: Final = frozenset({"true", "yes", "y"})
_FALSE: Final = frozenset({"false", "no", "n"})


def _clean_value(text: str) -> str:
    return text.strip(DECORATION)


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
        self.problems.append(f"Field '{shown_path(path)}': {message}")

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


def extract(document: str, schema: PreparedSchema, *, content_sha256: str) -> Extracted:
    """Extract ``schema``'s fields from ``document`` by the rule of the module docstring.

    Args:
        document: the text, decoded.
        schema: a prepared schema (see ``_schema``).
        content_sha256: hex sha256 of the uploaded bytes, the seed of the reference ids.
    """
    extractor = _Extractor(document, content_sha256)
    values, references, _ = extractor.fields(schema.fields)
    return Extracted(values=values, references=references, problems=tuple(extractor.problems))
