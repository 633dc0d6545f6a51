"""``python -m ade_async``: the ``ade-async`` command line."""

from .cli import entry_point

entry_point()
