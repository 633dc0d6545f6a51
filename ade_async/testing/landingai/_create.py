"""Reading a create request: the multipart form, checked as the documented API checks it.

``POST /v1/ade/extract/jobs`` is ``multipart/form-data`` (urlencoded is read too, for the error
paths). Checks, in order, each answered as documented (seed 002, ade-api-notes §1 and §7):
FastAPI's form validation (422: ``schema`` missing, ``strict`` not a boolean, reported together);
the model version (400); the schema (400/422, see ``_schema``); the Markdown inputs (422: several
files, both or neither of ``markdown`` and ``markdown_url``, a bare string part, an empty file, a
name not ending in ``.md``; an empty or malformed ``markdown_url``). The download of a
``markdown_url`` and the quota are the handler's (``_app``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import aiohttp
from aiohttp import web
from yarl import URL

from .._config import SimulatorConfig
from .._engine import Answer, FormPart, PreparedSchema, parse_form
from ._answers import error, unprocessable, value_error
from ._contract import SUPPORTED_MODEL
from ._schema import SchemaError, prepare_schema
from ._wire import ValidationError

__all__ = ["CreateRequest", "Downloader", "decode_markdown", "parse_create", "read_form"]

logger: Final = logging.getLogger("ade_async.testing")

#: The documented download timeout is not published; 10 s keeps failing tests short.
DOWNLOAD_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A create whose form passed every check."""

    schema: PreparedSchema
    model: str
    markdown: bytes | None
    filename: str
    markdown_url: str | None
    output_save_url: bool


async def read_form(request: web.Request) -> list[FormPart]:
    """The create form's fields, in order (an empty list when the body is not a form).

    Raises:
        FormError: the body claims to be a form and is not one.
        web.HTTPRequestEntityTooLarge: the body is over the application's size limit.
    """
    content_type = request.headers.get("Content-Type", "")
    mime = content_type.partition(";")[0].strip().lower()
    if not (mime.startswith("multipart/") or mime == "application/x-www-form-urlencoded"):
        return []  # not a form: every field is missing, as for FastAPI
    return parse_form(content_type, await request.read())


def _resolve_model(requested: str | None, config: SimulatorConfig) -> str | None:
    # ade-api-notes §7: absent or "extract-latest" -> the newest snapshot; the older snapshots
    # (extract-20250930, extract-20251024) "are deprecated and will result in errors".
    if requested is None or requested == "extract-latest":
        return config.default_model
    if requested in (SUPPORTED_MODEL, config.default_model):
        return requested
    return None


def _valid_url(text: str) -> bool:
    try:
        url = URL(text)
    except (ValueError, TypeError):
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def parse_create(parts: list[FormPart], config: SimulatorConfig) -> CreateRequest | Answer:
    """The checked create request, or the answer that refuses it (see the module docstring)."""
    # The last value of a repeated text field wins, as in FastAPI.
    fields = {part.name: part for part in parts}

    # FastAPI validates the form model first and reports every problem at once.
    problems: list[ValidationError] = []
    schema_part = fields.get("schema")
    if schema_part is None:
        problems.append(ValidationError(loc=("body", "schema"), msg="Field required", type="missing"))
    strict = False
    strict_part = fields.get("strict")
    if strict_part is not None:
        word = strict_part.text.strip().lower()
        if word == "true":
            strict = True
        elif word not in ("false", ""):
            problems.append(
                ValidationError(
                    loc=("body", "strict"),
                    msg="Input should be a valid boolean, unable to interpret input",
                    type="bool_parsing",
                )
            )
    if problems or schema_part is None:
        return unprocessable(*problems)

    model_part = fields.get("model")
    requested = model_part.text.strip() if model_part is not None else ""
    model = _resolve_model(requested or None, config)
    if model is None:
        supported = ", ".join(sorted({"extract-latest", SUPPORTED_MODEL, config.default_model}))
        return error("create", 400, f"Invalid extract version '{requested}'. Supported versions: {supported}")

    try:
        schema = prepare_schema(schema_part.text, strict)
    except SchemaError as exc:
        if exc.status == 400:
            return error("create", 400, exc.message)
        return value_error("schema", exc.message)

    # Markdown inputs (seed 002, "Create an Extract Job: Status 422").
    documents = [part for part in parts if part.name == "markdown"]
    url_part = fields.get("markdown_url")
    if len(documents) > 1:
        return value_error("markdown", "Multiple Markdown files detected")
    if documents and url_part is not None:
        return value_error("markdown", "Cannot provide both 'markdown' and 'markdown_url'")
    if not documents and url_part is None:
        return value_error("markdown", "Must provide either 'markdown' or 'markdown_url'")
    save_part = fields.get("output_save_url")
    output_save_url = save_part is not None and bool(save_part.text.strip())
    if documents:
        document = documents[0]
        # A bare string part (no filename) is refused (ade-api-notes §1, "Practical gotcha").
        if not document.filename:
            return value_error("markdown", "Invalid file provided")
        if not document.data:
            return value_error("markdown", "No markdown file or URL provided")
        if not document.filename.lower().endswith(".md"):
            return value_error("markdown", "Unsupported format")
        return CreateRequest(
            schema=schema,
            model=model,
            markdown=document.data,
            filename=document.filename,
            markdown_url=None,
            output_save_url=output_save_url,
        )
    assert url_part is not None
    url = url_part.text.strip()
    if not url:
        return value_error("markdown_url", "No markdown file or URL provided")
    if not _valid_url(url):
        return value_error("markdown_url", "Invalid URL format")
    segment = URL(url).name  # decoded already
    return CreateRequest(
        schema=schema,
        model=model,
        markdown=None,
        filename=segment or "document.md",
        markdown_url=url,
        output_save_url=output_save_url,
    )


def decode_markdown(data: bytes) -> str | None:
    """The Markdown as text (a leading BOM dropped), or ``None`` when it is not UTF-8."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


class Downloader:
    """The client session that fetches ``markdown_url`` documents, opened on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, url: str) -> bytes | None:
        """The document's bytes, or ``None`` when it cannot be downloaded."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=DOWNLOAD_TIMEOUT)
        try:
            async with self._session.get(url, allow_redirects=True) as response:
                if not 200 <= response.status < 300:
                    logger.debug("markdown_url answered %d", response.status)
                    return None
                return await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.debug("markdown_url download failed: %r", exc)
            return None

    async def close(self) -> None:
        """Close the session, if one was opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None
