"""Fixtures of the reliability suite: the collected run reports, and the figures they make.

Run ``ADE_RELIABILITY_FIGURES=tests/reliability/README.md pytest tests/reliability`` to rewrite the
figures table of that README from the runs just made.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import RunReport, figures_target, write_figures

_REPORTS: list[RunReport] = []
_NOTES: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _figures() -> Iterator[None]:
    yield
    target = figures_target()
    if target is not None and _REPORTS:
        # The scenario table's order, each scenario's extract_many run before its CLI run.
        names = list(dict.fromkeys(report.scenario for report in _REPORTS))
        paths = {"extract_many": 0, "CLI": 1}
        ordered = sorted(_REPORTS, key=lambda r: (names.index(r.scenario), paths[r.path]))
        write_figures(ordered, _NOTES, target)


@pytest.fixture
def reports() -> list[RunReport]:
    """Where a test files its run reports, for the figures."""
    return _REPORTS


@pytest.fixture
def figure_notes() -> list[str]:
    """Where a test files a measured figure (one line), for the figures."""
    return _NOTES
