"""``python -m ade_async``: the ``ade-async`` command line."""

from ._cli import entry_point

entry_point()
