"""Staging one document for a create: read it, check it and its schema, let the vendor prepare.

The first step of the one-way flow (document -> stage -> admission -> create -> ...): nothing is
sent by the checks; the provider's :meth:`~ade_async.providers.Provider.stage` may upload the
document or register the schema (vendors that take those first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .._errors import InputError
from .._inputs import read_document
from .._schema import schema_to_dict
from .types import Staged

if TYPE_CHECKING:
    from .._inputs import DocumentInput
    from .._schema import SchemaInput
    from ..providers import Provider
    from .http import Api

__all__ = ["stage"]


async def stage(
    provider: Provider,
    api: Api,
    document: DocumentInput | None,
    schema: SchemaInput,
    options: Any,
    filename: str | None,
    *,
    check: bool,
) -> tuple[Staged, type[Any] | None]:
    """The document read and checked (``check``: as the vendor would; unchecked for
    ``create_job``), the schema prepared, and what the vendor stages first; with the schema's
    type when it is one (results are then typed by it)."""
    options = provider.check_options(options)
    schema_type = schema if isinstance(schema, type) else None
    # Unchecked (create_job), a JSON string goes as given: the vendor judges it.
    raw = schema if not check and isinstance(schema, str) else schema_to_dict(schema)
    prepared = provider.prepare_schema(raw, options, check=check)
    content: bytes | None = None
    name = filename or provider.default_filename
    if document is None:
        if check and provider.needs_document(options):
            raise TypeError("nothing to extract: pass a document (a path, str or bytes)")
    else:
        if check and not provider.needs_document(options):
            raise ValueError("pass either a document or the options' URL to read it from, not both")
        try:
            content, name = await read_document(document, filename=filename, default_name=name)
        except (InputError, TypeError):
            raise
        except Exception as exc:  # an input object that misbehaves: this input's problem alone
            raise InputError(f"cannot read the document: {type(exc).__name__}: {exc}") from exc
        # Checked in a worker thread: a 50 MiB document's decode would otherwise hold the event
        # loop (and so the poller, the admission timer, every other caller) for tens of ms.
        problem = await anyio.to_thread.run_sync(provider.check_document, content, name) if check else None
        if problem is not None:
            raise InputError(f"{name}: {problem}", path=name)
    staged = await provider.stage(api, content=content, filename=name, schema=prepared, options=options)
    return staged, schema_type
