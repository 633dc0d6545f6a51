"""Shared fixtures. Tests run on asyncio through anyio's pytest plugin; nothing leaves loopback."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_ade_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never inherit a developer's real key or host from the environment."""
    for name in ("VISION_AGENT_API_KEY", "LANDINGAI_ADE_ENVIRONMENT", "LANDINGAI_ADE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
