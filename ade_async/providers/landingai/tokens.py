"""Upload tokens: how LandingAI ADE's job of a lost create is recognised (its match key).

ADE has no idempotency key (ade-api-notes §1), and the only part of a create that comes back later
is the upload's file name: a completed job's result carries it as ``metadata.filename``
(ade-api-notes §2). So every upload is named ``<stem>.ade-<token><suffix>``
(``invoice.ade-k3j9x2q7m1ab4cde.md``): the user's name stays readable, and the token, 80 random bits
(never derived from the key), makes the upload recognisable among every job of the key. Failed and
cancelled jobs carry no file name: they cannot be identified.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Final

__all__ = ["new_upload_token", "tag_filename", "token_of"]

#: ``.ade-`` then 16 base32 characters (80 bits), before the suffix if the name has one.
_TOKEN_PATTERN: Final = re.compile(r"\.ade-([a-z2-7]{16})(?:\.[^./\\]*)?$")


def new_upload_token() -> str:
    """A fresh random token: 80 bits from the OS's CSPRNG, lowercase base32 (header-safe)."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def tag_filename(filename: str, token: str) -> str:
    """``invoice.md`` -> ``invoice.ade-<token>.md``: the user's name stays recognisable."""
    # The token goes before the last extension, which the API checks (".md"). Not os.path.splitext:
    # it sees no extension at all in "..md" or ".md".
    base, dot, extension = filename.rpartition(".")
    if not dot:
        return f"{filename}.ade-{token}"
    return f"{base or 'document'}.ade-{token}.{extension}"


def token_of(filename: str | None) -> str | None:
    """The upload token a file name carries, or ``None``."""
    if not filename:
        return None
    match = _TOKEN_PATTERN.search(filename)
    return match.group(1) if match else None
