"""The ``ade-async`` command line (``python -m ade_async`` runs it too): ``ade_async.cli.main(argv)``."""

from ._main import entry_point, main

__all__ = ["entry_point", "main"]
