"""LandingAI ADE's local check of Markdown: what the API answers 422 for, found before sending.

The API refuses empty Markdown and Markdown that is not UTF-8 (422). The check runs in slices, so
that checked in a worker thread (the ``ade-async`` command does) it never holds the GIL, and so
stalls the event loop, for long.
"""

from __future__ import annotations

__all__ = ["CHECK_SLICE", "markdown_problem"]


#: The Markdown checks look at content in slices of this many bytes. Each slice is one short call
#: into C that holds the GIL (about a millisecond); between slices other threads run. Checked in a
#: worker thread (the ``ade-async`` command does), 50 MiB in one call would still hold the GIL, and
#: so stall the event loop, for 50-80 ms.
CHECK_SLICE = 1 << 20


def markdown_problem(content: bytes, *, slice_size: int = CHECK_SLICE) -> str | None:
    """Why the API would refuse this Markdown (it answers 422 for both), or ``None``.

    Empty means nothing but ASCII whitespace; the first byte that is not valid UTF-8 is named.
    ``slice_size`` (see :data:`CHECK_SLICE`) changes how the work is cut, never the answer.
    """
    size = len(content)
    if all(content[i : i + slice_size].isspace() for i in range(0, size, slice_size)):
        return "empty file: there is nothing to extract"
    start = 0
    while start < size:
        # Never cut a character in two: the slice takes the (at most 3) continuation bytes
        # 10xxxxxx that follow its end. More of them would be invalid anyway, wherever cut.
        cut = min(start + slice_size, size)
        limit = min(cut + 3, size)
        while cut < limit and content[cut] & 0xC0 == 0x80:
            cut += 1
        piece = content[start:cut]
        if not piece.isascii():  # ASCII is UTF-8: only other slices need decoding
            try:
                piece.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"not UTF-8 text (byte {start + exc.start}): the API takes UTF-8 Markdown"
        start = cut
    return None
