"""Settings: environment, validation limits, key handling."""

from __future__ import annotations

import pytest

from deepseek_magic.config.settings import Settings
from deepseek_magic.core.errors import ConfigError

KEY = "sk-canary-0123456789abcdef"


def test_environment_variables_are_read() -> None:
    env = {
        "DEEPSEEK_PROVIDER": "Evolink",
        "DEEPSEEK_BASE_URL": "http://127.0.0.1:8/",  # DeepSeek's alone: not for Evolink's key
        "EVOLINK_BASE_URL": "http://127.0.0.1:9/",
        "DEEPSEEK_MODEL": "deepseek-v4-pro",
        "EVOLINK_API_KEY": KEY,
    }
    settings = Settings.from_env(env)
    assert settings.provider == "evolink"
    assert settings.base_url == "http://127.0.0.1:9"
    assert settings.model == "deepseek-v4-pro"
    assert settings.resolved_api_key(env) == KEY


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.provider, settings.model, settings.stream) == ("deepseek", "deepseek-flash", True)
    assert settings.resolved_api_key({}) is None


@pytest.mark.parametrize("provider", ["anyfast", "evolink", "runware"])
def test_resellers_default_to_their_documented_flash_name(provider: str) -> None:
    assert Settings.from_env({"DEEPSEEK_PROVIDER": provider}).model == "deepseek-v4-flash"
    assert Settings.build(provider=provider).model == "deepseek-v4-flash"
    assert Settings.build(provider=provider, model="deepseek-v4-pro").model == "deepseek-v4-pro"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", 2.5, "temperature must be between 0 and 2"),
        ("temperature", -0.1, "temperature must be between 0 and 2"),
        ("top_p", 1.01, "top_p must be between 0 and 1"),
        ("max_tokens", 0, "max_tokens must be between 1 and 384000"),
        ("max_tokens", 384_001, "max_tokens must be between 1 and 384000"),
        ("top_logprobs", 21, "top_logprobs must be between 0 and 20"),
        ("n", 9, "n must be between 1 and 8"),
        ("n", 0, "n must be between 1 and 8"),
        ("stop", ["x"] * 17, "stop takes at most 16 sequences"),
        ("user_id", "has space", "user_id may only contain"),
        ("user_id", "a" * 513, "user_id must be at most 512 characters"),
        ("logit_bias", {"42": 101}, "logit_bias values must be between -100 and 100"),
        ("effort", "extreme", "effort"),
        ("provider", "openai", "provider"),
        ("model", "  ", "model must not be empty"),
        ("base_url", "ftp://x", "base_url must be an http(s) URL"),
    ],
)
def test_bad_values_give_one_clear_error_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.build(**{field: value})
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert "pydantic" not in text.lower()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 0),
        ("temperature", 2),
        ("top_p", 0),
        ("top_p", 1),
        ("max_tokens", 1),
        ("max_tokens", 384_000),
        ("stop", ["x"] * 16),
        ("user_id", "a-b_C9" * 85),
        ("n", 8),
        ("top_logprobs", 20),
    ],
)
def test_limits_are_inclusive(field: str, value: object) -> None:
    assert getattr(Settings.build(**{field: value}), field) == value


def test_plain_http_is_refused_for_remote_hosts_only() -> None:
    with pytest.raises(ConfigError, match="plain http"):
        Settings.build(base_url="http://api.example.com")
    assert Settings.build(base_url="http://api.example.com", allow_insecure_http=True).base_url
    for local in ("http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80"):
        assert Settings.build(base_url=local).base_url == local


def test_credentials_in_url_or_headers_are_refused() -> None:
    with pytest.raises(ConfigError, match="credentials"):
        Settings.build(base_url="https://user:pw@api.deepseek.com")
    with pytest.raises(ConfigError, match="credentials"):
        Settings.build(extra_headers={"Authorization": "Bearer x"})


def test_key_never_appears_in_repr_str_or_dumps() -> None:
    settings = Settings.build(api_key=KEY)
    for text in (repr(settings), str(settings), str(settings.public_dict()), settings.model_dump_json()):
        assert KEY not in text
    assert settings.public_dict()["api_key_set"] is True
    assert settings.resolved_api_key({}) == KEY


def test_error_messages_never_echo_a_bad_key() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.build(api_key=KEY, temperature=9)
    assert KEY not in str(info.value)


def test_switching_provider_drops_the_key() -> None:
    settings = Settings.build(api_key=KEY)
    assert settings.merged(provider="anyfast").resolved_api_key({}) is None
    assert settings.merged(provider="anyfast", api_key="sk-other").resolved_api_key({}) == "sk-other"
    assert settings.merged(model="deepseek-v4-pro").resolved_api_key({}) == KEY
    settings.update(provider="evolink")
    assert settings.api_key is None


def test_merged_validates_and_leaves_the_original_alone() -> None:
    base = Settings.build(temperature=1.0)
    with pytest.raises(ConfigError):
        base.merged(temperature=7)
    assert base.merged(temperature=None) is base
    assert base.merged(top_p=0.5).top_p == 0.5 and base.top_p is None


def test_update_is_all_or_nothing() -> None:
    settings = Settings.build()
    with pytest.raises(ConfigError):
        settings.update(temperature=1.5, top_p=3)
    assert settings.temperature is None


def test_provider_key_variable_is_used_not_deepseeks() -> None:
    env = {"DEEPSEEK_API_KEY": "sk-deepseek-key-1234"}
    assert Settings.build(provider="anyfast").resolved_api_key(env) is None
    assert Settings.build().resolved_api_key(env) == "sk-deepseek-key-1234"
