"""A corpus of hostile inputs, each with what must become of it, for the hostile-input tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Expect", "build_hostile_tree", "invoice"]


def invoice(n: int) -> str:
    return f"# Invoice {n}\n\nInvoice Number: INV-{n}\nTotal: {n}.25\n"


@dataclass(frozen=True)
class Expect:
    """What must become of one hostile input.

    Attributes:
        invoice: the invoice number its result must carry where it succeeds.
        cli: words the command's ``.error.json`` message must contain (``None``: it succeeds).
        api: words ``extract_many``'s failure must contain (``None``: it succeeds).
        stage: ``extract_many``'s failure stage.
    """

    invoice: int | None = None
    cli: str | None = None
    api: str | None = None
    stage: str = "read"


def build_hostile_tree(docs: Path, *, max_size: int) -> dict[str, Expect]:
    """Write the corpus under ``docs``; returns file name -> expectation.

    ``max_size`` is the size limit the command is run with; one file is just over it.
    """
    docs.mkdir(parents=True, exist_ok=True)
    expect: dict[str, Expect] = {}

    def good(name: str, n: int) -> None:
        (docs / name).write_text(invoice(n), encoding="utf-8")
        expect[name] = Expect(invoice=n)

    # Odd but valid names: every one of them must simply work.
    good("plain.md", 1)
    good("line\nbreak.md", 2)
    good("tab\there and\rreturn.md", 3)
    good("ünïcødé ..name.md", 4)
    good("emoji \U0001f9fe.md", 5)
    good("..md", 6)
    good("...md", 7)
    good("-rf --help.md", 8)
    good('quote"back\\slash.md', 9)
    good("n" * 240 + ".md", 10)  # a long name: 243 bytes of the 255 a name may have

    def bad(name: str, content: bytes, *, cli: str, api: str, stage: str = "submit") -> None:
        (docs / name).write_bytes(content)
        expect[name] = Expect(cli=cli, api=api, stage=stage)

    # Content the API cannot take: the command and the library refuse it before sending anything.
    bad("empty.md", b"", cli="empty", api="empty file", stage="read")
    bad("binary.md", bytes(range(256)) * 4, cli="not UTF-8", api="not UTF-8", stage="read")
    latin1 = "Invoice Number: caf\xe9\n".encode("latin-1")
    bad("latin1.md", latin1, cli="not UTF-8", api="not UTF-8", stage="read")
    # Over the command's --max-size: refused there before reading; the library's limit is 50 MiB.
    (docs / "over-the-limit.md").write_text(invoice(11) + "x" * max_size, encoding="utf-8")
    expect["over-the-limit.md"] = Expect(cli="too large", invoice=11)
    # 60 MiB of nothing (sparse: no disk, no time): over every limit, refused before a byte is read.
    with open(docs / "huge-sparse.md", "wb") as huge:
        huge.truncate(60 * 1024 * 1024)
    expect["huge-sparse.md"] = Expect(cli="too large", api="too large")

    # Things that are not readable files at all.
    (docs / "loop-a.md").symlink_to(docs / "loop-b.md")
    (docs / "loop-b.md").symlink_to(docs / "loop-a.md")
    expect["loop-a.md"] = expect["loop-b.md"] = Expect(cli="loop", api="symbolic links")
    (docs / "dangling.md").symlink_to(docs / "nowhere" / "gone.md")
    expect["dangling.md"] = Expect(cli="cannot read", api="not found")
    os.mkfifo(docs / "fifo.md")  # opening it would block until a writer came
    expect["fifo.md"] = Expect(cli="not a regular file", api="Not a regular file")
    return expect
