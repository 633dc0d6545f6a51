"""Configuration: explicit arguments win, then the SDK's environment variables; errors name them."""

from __future__ import annotations

import pickle

import pytest

import ade_async
from ade_async._config import ApiKey, Timeouts, resolve_api_key, resolve_base_url

US = "https://api.va.landing.ai"
EU = "https://api.va.eu-west-1.landing.ai"


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ade_async.ConfigurationError, match="VISION_AGENT_API_KEY"):
        resolve_api_key(None, env={})


def test_client_without_key_fails_at_construction() -> None:
    with pytest.raises(ade_async.ConfigurationError, match="VISION_AGENT_API_KEY"):
        ade_async.Client()


def test_explicit_key_wins_over_environment() -> None:
    key = resolve_api_key("explicit", env={"VISION_AGENT_API_KEY": "from-env"})
    assert key.reveal() == "explicit"
    assert resolve_api_key(None, env={"VISION_AGENT_API_KEY": "from-env"}).reveal() == "from-env"


def test_blank_key_is_missing() -> None:
    with pytest.raises(ade_async.ConfigurationError):
        resolve_api_key("   ", env={})


def test_key_is_masked_everywhere() -> None:
    key = ApiKey("sk-secret-value")
    assert "sk-secret" not in repr(key)
    assert "sk-secret" not in str(key)
    assert "sk-secret" not in f"{key}"
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_client_repr_hides_key() -> None:
    client = ade_async.Client(api_key="sk-secret-value", base_url="http://127.0.0.1:9")
    assert "sk-secret" not in repr(client)
    assert "127.0.0.1:9" in repr(client)


@pytest.mark.parametrize(
    ("base_url", "environment", "env", "expected"),
    [
        (None, None, {}, US),
        (None, "eu", {}, EU),
        (None, "production", {"LANDINGAI_ADE_ENVIRONMENT": "eu"}, US),
        (None, None, {"LANDINGAI_ADE_ENVIRONMENT": "eu"}, EU),
        (None, None, {"LANDINGAI_ADE_ENVIRONMENT": "EU"}, EU),
        (None, None, {"LANDINGAI_ADE_BASE_URL": "http://127.0.0.1:8000/"}, "http://127.0.0.1:8000"),
        # the base URL variable is more specific than the environment variable
        (
            None,
            None,
            {"LANDINGAI_ADE_BASE_URL": "http://proxy", "LANDINGAI_ADE_ENVIRONMENT": "eu"},
            "http://proxy",
        ),
        ("http://explicit:1", None, {"LANDINGAI_ADE_BASE_URL": "http://proxy"}, "http://explicit:1"),
        (None, "eu", {"LANDINGAI_ADE_BASE_URL": "http://proxy"}, EU),
    ],
)
def test_base_url_resolution(
    base_url: str | None, environment: str | None, env: dict[str, str], expected: str
) -> None:
    assert resolve_base_url(base_url, environment, env=env) == expected


def test_base_url_and_environment_together_are_ambiguous() -> None:
    with pytest.raises(ade_async.ConfigurationError, match="Ambiguous"):
        resolve_base_url("http://x", "eu", env={})


@pytest.mark.parametrize("name", ["staging-ish", "us"])
def test_unknown_environment_names_the_source(name: str) -> None:
    with pytest.raises(ade_async.ConfigurationError, match="LANDINGAI_ADE_ENVIRONMENT"):
        resolve_base_url(None, None, env={"LANDINGAI_ADE_ENVIRONMENT": name})
    with pytest.raises(ade_async.ConfigurationError, match="production"):
        resolve_base_url(None, name, env={})


@pytest.mark.parametrize("url", ["ftp://host", "api.va.landing.ai", "http://host/?key=1"])
def test_bad_base_url(url: str) -> None:
    with pytest.raises(ade_async.ConfigurationError):
        resolve_base_url(url, None, env={})


def test_timeouts_validate() -> None:
    assert Timeouts().connect == 10.0
    with pytest.raises(ValueError, match="read"):
        Timeouts(read=0)


def test_environment_variables_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_AGENT_API_KEY", "k")
    monkeypatch.setenv("LANDINGAI_ADE_ENVIRONMENT", "eu")
    assert ade_async.Client().base_url == EU
