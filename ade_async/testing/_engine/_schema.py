"""JSON Schema -> the fields the extraction rule looks for. Pure functions, no I/O, no vendor.

Every vendor takes a JSON Schema and checks it its own way (LandingAI refuses some keywords under
``strict``, Contextual caps leaves per array, LlamaCloud caps nesting), with its own messages. What
they share is what this module does: resolve local ``$ref`` pointers, measure the result, find
keywords, and turn the ``properties`` into :class:`FieldSpec` trees that
:func:`~ade_async.testing._engine._extraction.extract` fills in. A vendor module calls the pieces in
the order its contract checks things and maps a :class:`SchemaProblem` to its own answer;
:func:`compile_schema` is the whole path for a vendor with no checks of its own::

    root = json.loads(text)                      # the vendor decides what a non-JSON schema answers
    resolved = resolve_refs(root)                # SchemaProblem("ref_cycle" | "invalid")
    found = scan_schema(resolved, {"allOf"})     # keywords present, non-null defaults
    fields = build_fields(resolved.get("properties", {}))
    schema = PreparedSchema(fields=fields, leaf_count=count_leaves(fields))

Field types
===========

``type`` as given; a type list or ``anyOf`` with exactly one non-null member takes that member;
several non-null members fall back to ``string``; no ``type`` (or an unknown one) means ``object``
if ``properties`` is present, ``array`` if ``items`` is, else ``string``. A field's *labels*, the
names the extraction rule looks for in a document, are its property name, that name with ``_`` and
``-`` read as spaces, its ``title`` and each of its ``x-alternativeNames``, normalised by
:func:`normalize_label`.

Sibling keys of a ``$ref`` override the target's. Remote refs are dropped (never fetched), and the
meta keywords (``$defs``, ``definitions``, ``$schema``, ``$id``, ``$anchor``, ``$comment``,
``$vocabulary`` and the ``$dynamic*``/``$recursive*`` ones) are removed once resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, cast
from urllib.parse import unquote

__all__ = [
    "DECORATION",
    "MAX_EXPANDED_NODES",
    "FieldSpec",
    "Kind",
    "PreparedSchema",
    "SchemaProblem",
    "SchemaScan",
    "build_fields",
    "compile_schema",
    "count_leaves",
    "expanded_nodes",
    "join_path",
    "normalize_label",
    "resolve_refs",
    "scan_schema",
    "shown_path",
]

Kind: TypeAlias = Literal["string", "number", "integer", "boolean", "array", "object", "null"]

#: The most nodes a schema may expand to once its local refs are resolved: a "billion laughs" of
#: refs to refs must not hang the simulator (its own guard, not any vendor's documented limit).
MAX_EXPANDED_NODES: Final = 200_000

# Resolved, then removed.
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
DECORATION: Final = "*` \t\r\n\x0b\x0c\u00a0"
_KINDS: Final = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
# Constraints an extracted value is checked against (a vendor may have pruned them from what its
# model sees, and still report a value that breaks them).
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


class SchemaProblem(Exception):
    """The schema cannot be used; the vendor module turns this into its documented answer.

    Attributes:
        reason: ``"ref_cycle"`` (local ``$ref`` pointers that refer to themselves) or
            ``"invalid"`` (a pointer to nothing, a named anchor, ``properties`` or a property
            that is not an object).
    """

    def __init__(self, reason: Literal["ref_cycle", "invalid"]) -> None:
        super().__init__(reason)
        self.reason: Literal["ref_cycle", "invalid"] = reason


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
    """A checked, resolved schema, ready to extract with. Immutable and shareable.

    A vendor module builds one per distinct schema (and may cache it: benchmarks send the same
    schema with every job) and keeps it on each job that uses it.
    """

    fields: tuple[FieldSpec, ...]
    leaf_count: int
    #: What the vendor had to say about the schema itself (e.g. keywords it removed), in schema
    #: order; the engine only carries them to the vendor's answer.
    schema_warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SchemaScan:
    """What :func:`scan_schema` found in schema positions (never in property names or values)."""

    #: The asked-for keywords present anywhere.
    keywords: frozenset[str]
    #: Paths (``a.b``, ``items[]``; ``""`` for the root) of sub-schemas with a non-null ``default``.
    defaults: tuple[str, ...]


def join_path(path: str, name: str) -> str:
    """``path.name``, or ``name`` at the root."""
    return f"{path}.{name}" if path else name


def shown_path(path: str) -> str:
    """A field path for messages: ``(root)`` for the root."""
    return path or "(root)"


def normalize_label(text: str) -> str:
    """A label as compared: stripped of whitespace/``*``/backticks, case-folded, ``_`` as space."""
    cleaned = text.strip(DECORATION).casefold().replace("_", " ")
    return " ".join(cleaned.split())


# --------------------------------------------------------------------------------------------
# resolution


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
                raise SchemaProblem("invalid")
            return {**target, **out}
        # A remote $ref is not fetched: it is dropped and the field keeps its other keywords.
        return out

    def _ref(self, ref: str) -> Any:
        if ref in self._resolved:
            return self._resolved[ref]
        if ref in self._active:
            raise SchemaProblem("ref_cycle")
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
            raise SchemaProblem("invalid")  # a named anchor: not supported, not resolvable
        for token in fragment[1:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise SchemaProblem("invalid")
        return node


def resolve_refs(root: dict[str, Any]) -> dict[str, Any]:
    """``root`` with its local ``$ref`` pointers replaced by their targets and meta keywords removed.

    Resolved targets are shared, not copied: measure the result with :func:`expanded_nodes`
    before walking it.

    Raises:
        SchemaProblem: a cycle of refs, or a ref to nothing.
        RecursionError: a schema nested deeper than Python recurses (the caller answers it).
    """
    resolved = _Resolver(root).schema(root)
    assert isinstance(resolved, dict)
    return resolved


def expanded_nodes(node: Any, memo: dict[int, int] | None = None) -> int:
    """The nodes of ``node`` as a tree (shared sub-schemas counted every time they appear).

    Linear in the size of the text, whatever the tree's size: shared nodes are counted once each
    and multiplied, never walked again.
    """
    memo = {} if memo is None else memo
    if not isinstance(node, dict | list):
        return 1
    known = memo.get(id(node))
    if known is None:
        children = node.values() if isinstance(node, dict) else node
        known = memo[id(node)] = 1 + sum(expanded_nodes(child, memo) for child in children)
    return known


def _subschemas(node: dict[str, Any], path: str) -> Iterator[tuple[Any, str]]:
    for key in _SCHEMA_MAPS:
        value = node.get(key)
        if isinstance(value, dict):
            for name, sub in value.items():
                yield sub, join_path(path, name) if key == "properties" else path
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


def scan_schema(node: Any, keywords: Iterable[str]) -> SchemaScan:
    """Find ``keywords`` and non-null ``default`` values in every schema position of ``node``."""
    wanted = frozenset(keywords)
    found: set[str] = set()
    defaults: list[str] = []

    def walk(sub: Any, path: str) -> None:
        if not isinstance(sub, dict):
            return
        found.update(key for key in sub if key in wanted)
        if sub.get("default") is not None:
            defaults.append(path)
        for child, child_path in _subschemas(sub, path):
            walk(child, child_path)

    walk(node, "")
    return SchemaScan(keywords=frozenset(found), defaults=tuple(defaults))


# --------------------------------------------------------------------------------------------
# field specs


def _effective(node: dict[str, Any]) -> dict[str, Any]:
    """Apply the type simplifications: type lists and ``anyOf`` with null."""
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
        # Several non-null members: the field falls back to string.
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
        raise SchemaProblem("invalid")
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
            raise SchemaProblem("invalid")
        properties = tuple(_build(sub, child, join_path(path, child)) for child, sub in props.items())
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


def build_fields(properties: Any) -> tuple[FieldSpec, ...]:
    """The field specs of a resolved root's ``properties``, in schema order.

    Raises:
        SchemaProblem: ``"invalid"`` when ``properties`` or a property is not an object.
    """
    if not isinstance(properties, Mapping):
        raise SchemaProblem("invalid")
    return tuple(_build(sub, name, name) for name, sub in properties.items())


def _leaves(spec: FieldSpec) -> int:
    if spec.kind == "object":
        return sum(_leaves(child) for child in spec.properties)
    if spec.kind == "array" and spec.items is not None and spec.items.kind in ("object", "array"):
        return _leaves(spec.items) if spec.items.kind == "object" else 1
    return 1


def count_leaves(fields: Iterable[FieldSpec]) -> int:
    """Primitives and arrays of primitives in ``fields`` (an array of objects counts its leaves once)."""
    return sum(_leaves(spec) for spec in fields)


def compile_schema(root: dict[str, Any], *, schema_warnings: tuple[str, ...] = ()) -> PreparedSchema:
    """Resolve, measure and build ``root`` in one call, for a vendor with no checks in between.

    Raises:
        SchemaProblem: a ref cycle, a ref to nothing, a schema that expands past
            :data:`MAX_EXPANDED_NODES`, or ``properties`` that are not objects (``"invalid"``).
    """
    try:
        resolved = resolve_refs(root)
        if expanded_nodes(resolved) > MAX_EXPANDED_NODES:
            raise SchemaProblem("invalid")
        fields = build_fields(resolved.get("properties", {}))
    except RecursionError:
        raise SchemaProblem("invalid") from None
    return PreparedSchema(fields=fields, leaf_count=count_leaves(fields), schema_warnings=schema_warnings)
