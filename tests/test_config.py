"""Configuration: explicit arguments win, then the SDK's environment variables; errors name them."""

from __future__ import annotations

import pickle

import pytest

import ade_async
from ade_async._config import ApiKey, Timeouts, resolve_api_key, resolve_base_url
from ade_async.providers.landingai import INFO as LANDINGAI

US = "https://api.va.landing.ai"
EU = "https://api.va.eu-west-1.landing.ai"


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ade_async.ConfigurationError, match="VISION_AGENT_API_KEY"):
        resolve_api_key(None, LANDINGAI, env={})


def test_client_without_key_fails_at_construction() -> None:
    with pytest.raises(ade_async.ConfigurationError, match="VISION_AGENT_API_KEY"):
        ade_async.Client()


def test_explicit_key_wins_over_environment() -> None:
    key = resolve_api_key("explicit", LANDINGAI, env={"VISION_AGENT_API_KEY": "from-env"})
    assert key.reveal() == "explicit"
    assert resolve_api_key(None, LANDINGAI, env={"VISION_AGENT_API_KEY": "from-env"}).reveal() == "from-env"


def test_blank_key_is_missing() -> None:
    with pytest.raises(ade_async.ConfigurationError):
        resolve_api_key("   ", LANDINGAI, env={})


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
            {"LANDINGAI_ADE_BASE_URL": "https://proxy", "LANDINGAI_ADE_ENVIRONMENT": "eu"},
            "https://proxy",
        ),
        ("https://explicit:1", None, {"LANDINGAI_ADE_BASE_URL": "https://proxy"}, "https://explicit:1"),
        (None, "eu", {"LANDINGAI_ADE_BASE_URL": "https://proxy"}, EU),
    ],
)
def test_base_url_resolution(
    base_url: str | None, environment: str | None, env: dict[str, str], expected: str
) -> None:
    assert resolve_base_url(base_url, environment, LANDINGAI, env=env) == expected


def test_base_url_and_environment_together_are_ambiguous() -> None:
    with pytest.raises(ade_async.ConfigurationError, match="Ambiguous"):
        resolve_base_url("https://x", "eu", LANDINGAI, env={})


@pytest.mark.parametrize("name", ["staging-ish", "us"])
def test_unknown_environment_names_the_source(name: str) -> None:
    with pytest.raises(ade_async.ConfigurationError, match="LANDINGAI_ADE_ENVIRONMENT"):
        resolve_base_url(None, None, LANDINGAI, env={"LANDINGAI_ADE_ENVIRONMENT": name})
    with pytest.raises(ade_async.ConfigurationError, match="production"):
        resolve_base_url(None, name, LANDINGAI, env={})


@pytest.mark.parametrize("url", ["ftp://host", "api.va.landing.ai", "http://host/?key=1"])
def test_bad_base_url(url: str) -> None:
    with pytest.raises(ade_async.ConfigurationError):
        resolve_base_url(url, None, LANDINGAI, env={})


#: Plain-HTTP URLs whose host is not this machine: the key would cross a network unencrypted.
REMOTE_HTTP = [
    "http://api.va.landing.ai",
    "http://proxy",
    "http://10.0.0.5:8000",
    "http://192.168.1.10/v1",
    "http://[2001:db8::1]:8080",
    "http://0.0.0.0:8000",  # "every interface" as a listen address; as a destination, not loopback
    "http://localhost.example.com",
    "http://127.0.0.1.nip.io",
    "HTTP://Example.COM",
]
#: Loopback, or TLS: fine.
ALLOWED = [
    "http://127.0.0.1:8000",
    "http://127.5.6.7",
    "http://localhost:9",
    "http://LOCALHOST",
    "http://localhost.:9",
    "http://[::1]:8080",
    "http://[::ffff:127.0.0.1]:8080",
    "https://proxy.internal:8443",
    "https://10.0.0.5",
]


@pytest.mark.parametrize("url", REMOTE_HTTP)
def test_plain_http_to_another_host_is_refused_from_every_source(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ade_async.ConfigurationError, match=r"plain http://.*https://") as explicit:
        ade_async.Client(api_key="k", base_url=url)
    assert url in str(explicit.value)
    assert "base_url" in str(explicit.value)
    with pytest.raises(ade_async.ConfigurationError, match="LANDINGAI_ADE_BASE_URL") as from_env:
        resolve_base_url(None, None, LANDINGAI, env={"LANDINGAI_ADE_BASE_URL": url})
    assert url in str(from_env.value)
    monkeypatch.setenv("LANDINGAI_ADE_BASE_URL", url)
    with pytest.raises(ade_async.ConfigurationError, match="unencrypted"):
        ade_async.Client(api_key="k")


@pytest.mark.parametrize("url", ALLOWED)
def test_loopback_http_and_any_https_are_accepted(url: str) -> None:
    assert ade_async.Client(api_key="k", base_url=url).base_url == url.rstrip("/")


def test_timeouts_validate() -> None:
    assert Timeouts().connect == 10.0
    with pytest.raises(ValueError, match="read"):
        Timeouts(read=0)


def test_environment_variables_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_AGENT_API_KEY", "k")
    monkeypatch.setenv("LANDINGAI_ADE_ENVIRONMENT", "eu")
    assert ade_async.Client().base_url == EU
