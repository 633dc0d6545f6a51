"""LandingAI's error bodies, as the simulator answers them (seed 002, "Error responses").

* the create endpoint answers ``{"error": message}``, get and list ``{"message": message}``;
* every 422 is FastAPI's ``{"detail": [{"loc", "msg", "type"}]}``;
* an ``output_url`` is a presigned object-store URL: its errors are S3's XML documents.
"""

from __future__ import annotations

from typing import Final

from .._engine import Answer
from ._wire import HTTPValidationError, ValidationError, encode

__all__ = ["error", "unprocessable", "value_error"]

_XML: Final = "application/xml"
_XML_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8"?>\n'


def error(endpoint: str, status: int, message: str, *, code: str = "InternalError") -> Answer:
    """The error answer of ``endpoint`` (``code`` is the S3 error code of a download's)."""
    if endpoint == "download":
        xml = f"{_XML_DECLARATION}<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return Answer(status, xml.encode(), _XML)
    # Seed 002: "message field, except for the create endpoint, which returns ... an error field".
    key = "error" if endpoint == "create" else "message"
    return Answer(status, encode({key: message}))


def unprocessable(*items: ValidationError) -> Answer:
    """A 422 listing ``items``."""
    return Answer(422, encode(HTTPValidationError(detail=items)))


def value_error(field_name: str, message: str) -> Answer:
    """A 422 for one form field, as FastAPI reports a validator's ``ValueError``."""
    return unprocessable(ValidationError(loc=("body", field_name), msg=message, type="value_error"))
