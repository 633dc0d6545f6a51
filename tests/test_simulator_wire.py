"""The simulator speaks its own wire: models checked against the vendor's spec, not the client's.

The LandingAI simulator encodes its answers with models of its own (``testing/landingai/_wire``).
These tests hold them to the vendor's OpenAPI spec field by field, keep the simulator from
importing the client's models, and keep vendor strings out of the engine's code.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ade_async.providers.landingai import UNSUPPORTED_KEYWORDS as CLIENT_UNSUPPORTED_KEYWORDS
from ade_async.testing import UNSUPPORTED_SCHEMA_KEYWORDS
from ade_async.testing.landingai import _wire

PACKAGE = Path(__file__).resolve().parents[1] / "ade_async" / "testing"
SPEC_PATH = Path(
    os.environ.get(
        "ADE_OPENAPI_SPEC", Path(__file__).resolve().parents[2] / "shared/reference/ade-v1-openapi.json"
    )
)
MODELS: list[type[msgspec.Struct]] = [
    _wire.JobCreationResponse,
    _wire.ExtractWarning,
    _wire.ExtractMetadata,
    _wire.ExtractResponse,
    _wire.ExtractJobStatusResponse,
    _wire.JobSummary,
    _wire.JobsListResponse,
    _wire.ValidationError,
    _wire.HTTPValidationError,
]


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"the vendor's OpenAPI spec is not at {SPEC_PATH} (set ADE_OPENAPI_SPEC to its path)")
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    components: dict[str, Any] = spec["components"]["schemas"]
    return components


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_wire_models_follow_the_spec(model: type[msgspec.Struct], schemas: dict[str, Any]) -> None:
    schema = schemas[model.__name__]
    fields = {field.name: field for field in msgspec.structs.fields(model)}
    assert set(fields) == set(schema["properties"]), "the spec's property names, no more, no fewer"
    required = {name for name, field in fields.items() if field.required}
    assert required == set(schema.get("required", ())), "required exactly where the spec requires"
    for name, field in fields.items():
        declared = schema["properties"][name]
        if "default" in declared:
            assert field.default == declared["default"], name
        elif not field.required:
            nullable = {"type": "null"} in declared.get("anyOf", ())
            # An optional field defaults to null when the spec allows null, else to empty.
            assert field.default is None if nullable else field.default == (), name


def test_the_simulator_never_imports_the_client() -> None:
    """Only the shared command-line parsers (``ade_async._parsing``) cross from the client; and
    ``MockTransport``, which is no simulator but a client-side stand-in for the network (it speaks
    the client's own request and response types)."""
    crossings: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        depth = len(path.relative_to(PACKAGE).parts)  # 1 for testing/x.py, 2 for testing/sub/x.py
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > depth:
                crossings.add(f"{path.relative_to(PACKAGE)}: {node.module}")
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                crossings.update(
                    f"{path.relative_to(PACKAGE)}: {n}" for n in names if n.startswith("ade_async")
                )
    assert crossings == {
        "__init__.py: _parsing",
        "__main__.py: _parsing",
        "_mock.py: _engine.http",
        "_mock.py: _errors",
    }


def test_the_engine_code_names_no_vendor() -> None:
    """No ADE path, field name or status word in the engine's code (docstrings may teach with them)."""
    vendor_words = ("/v1/", "ade/extract", "output_url", "extraction", "pageSize", "has_more", "received_at")
    statuses = {"pending", "processing", "completed", "failed", "cancelled"}
    found: list[str] = []
    for path in (PACKAGE / "_engine").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                text = node.value
                if any(word in text for word in vendor_words) or text in statuses - {"failed", "cancelled"}:
                    found.append(f"{path.name}: {text!r}")
    assert found == []


def test_unsupported_keywords_agree_with_the_client() -> None:
    """Two independent copies of the documented list (ade-api-notes §7): a typo in either shows."""
    assert UNSUPPORTED_SCHEMA_KEYWORDS == CLIENT_UNSUPPORTED_KEYWORDS
