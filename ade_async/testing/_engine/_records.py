"""What a simulated service lets a test observe of each request: recorded exchanges.

The serving layer records one :class:`Exchange` per request when recording is on, the same way for
every vendor; a handler that reads a form sets the exchange's fields with :func:`form_record`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._forms import FormPart

__all__ = ["Exchange", "FormField", "form_record"]


@dataclass(frozen=True, kw_only=True, slots=True)
class FormField:
    """One field of a recorded form (a create, an upload).

    Attributes:
        name: the form field name.
        is_file: True for a multipart part with a ``filename`` parameter.
        filename: that filename, else ``None``.
        content_type: the part's ``Content-Type``, if any.
        value: the decoded text of a non-file field; ``None`` for files.
        size: the field's size in bytes.
    """

    name: str
    is_file: bool
    filename: str | None
    content_type: str | None
    value: str | None
    size: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Exchange:
    """One request and the answer the simulator gave (when recording, ``SimulatorConfig(record=True)``).

    ``status`` is 0, with an empty body and no headers, when the connection was closed without
    an answer.
    """

    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    form: tuple[FormField, ...]
    status: int
    response_body: bytes
    response_headers: dict[str, str]


def form_record(parts: Iterable[FormPart]) -> tuple[FormField, ...]:
    """The recorded fields of a parsed form: text values kept, files by name, type and size."""
    return tuple(
        FormField(
            name=part.name,
            is_file=part.filename is not None,
            filename=part.filename,
            content_type=part.content_type,
            value=None if part.filename is not None else part.text,
            size=len(part.data),
        )
        for part in parts
    )
