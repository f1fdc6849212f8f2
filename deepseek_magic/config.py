"""Settings: one validated model for everything a request depends on.

Why one model: the magics, the settings form, the chat widget and the Python
API all read and write the same object, so a value checked here is checked
for every entry point, before anything is sent. Limits come from
:mod:`deepseek_magic.limits`, the same table the emulator enforces.

The API key is a ``SecretStr``: its repr and str are masked, and it is only
unwrapped at the moment a request header is built. The key belongs to one
provider: switching provider drops it, so a DeepSeek key is never sent to a
reseller (or the other way round).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from . import limits
from .errors import ConfigError

ProviderName = Literal["deepseek", "anyfast", "evolink", "runware"]
Effort = Literal["low", "medium", "high", "max"]

PROVIDER_KEY_VARIABLES: dict[str, str] = {
    "deepseek": "DEEPSEEK_API_KEY",
    "anyfast": "ANYFAST_API_KEY",
    "evolink": "EVOLINK_API_KEY",
    "runware": "RUNWARE_API_KEY",
}

DEFAULT_MODEL = "deepseek-v4-flash"


class Settings(BaseModel):
    """Provider, model, generation parameters, transport behaviour."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    provider: ProviderName = "deepseek"
    base_url: str | None = Field(default=None, description="Overrides the provider's base URL.")
    api_key: SecretStr | None = Field(default=None, repr=False, description="Key for `provider`.")
    model: str = DEFAULT_MODEL

    thinking: bool | None = Field(default=None, description="None leaves the provider default (on for V4).")
    effort: Effort | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    json_mode: bool = False
    user_id: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    n: int | None = None

    stream: bool = True
    async_delivery: bool = Field(
        default=False, description="Submit and poll instead of holding the connection (Runware's async delivery)."
    )
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=120.0, gt=0, description="Longest silence; keep-alives count.")
    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=20.0, ge=0)
    allow_insecure_http: bool = False
    extra_headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("temperature", "top_p", "max_tokens", "top_logprobs", "n")
    @classmethod
    def _in_range(cls, value: float | None, info: Any) -> float | None:
        if value is not None:
            problem = limits.range_problem(info.field_name, value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            problem = limits.stop_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, value: str | None) -> str | None:
        if value is not None:
            problem = limits.user_id_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            problem = limits.logit_bias_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("model must not be empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
        if parts.username or parts.password:
            raise ValueError("base_url must not contain credentials; set the API key instead")
        return value

    @field_validator("extra_headers")
    @classmethod
    def _extra_headers(cls, value: dict[str, str]) -> dict[str, str]:
        if any(name.lower() in ("authorization", "x-api-key") for name in value):
            raise ValueError("extra_headers must not carry credentials; set the API key instead")
        return value

    @model_validator(mode="after")
    def _transport_security(self) -> Settings:
        if self.base_url and not self.allow_insecure_http:
            parts = urlsplit(self.base_url)
            if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
                raise ValueError(
                    f"base_url {self.base_url!r} uses plain http to a non-loopback host; "
                    "use https, or set allow_insecure_http=True if you really mean it"
                )
        return self

    # ----------------------------------------------------------------- building

    @classmethod
    def build(cls, **values: Any) -> Settings:
        """Validate ``values`` into Settings, raising one clear :class:`ConfigError`."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise config_error(exc) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``DEEPSEEK_PROVIDER``, ``DEEPSEEK_BASE_URL`` and ``DEEPSEEK_MODEL``.

        The key is not copied here: :meth:`resolved_api_key` reads the
        provider's key variable when it is needed, so a key exported after the
        extension loaded is still found.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("DEEPSEEK_PROVIDER"):
            values["provider"] = env["DEEPSEEK_PROVIDER"].strip().lower()
        if env.get("DEEPSEEK_BASE_URL"):
            values["base_url"] = env["DEEPSEEK_BASE_URL"]
        if env.get("DEEPSEEK_MODEL"):
            values["model"] = env["DEEPSEEK_MODEL"]
        values.update(overrides)
        return cls.build(**values)

    def merged(self, **overrides: Any) -> Settings:
        """A validated copy with ``overrides`` applied (``None`` values are skipped).

        A change of provider without a new key drops the current key: keys are
        never carried from one provider to another.
        """
        updates = {key: value for key, value in overrides.items() if value is not None}
        if not updates:
            return self
        values = {name: getattr(self, name) for name in type(self).model_fields}
        if updates.get("provider", self.provider) != self.provider and "api_key" not in updates:
            values["api_key"] = None
        values.update(updates)
        return type(self).build(**values)

    def __setattr__(self, name: str, value: Any) -> None:
        """``settings.field = value`` is validated with every rule (the http check included) before it lands.

        Pydantic's ``validate_assignment`` stores a value before model-level
        checks run, so a refused ``base_url`` would stay; going through
        :meth:`update` validates a copy first and changes nothing on refusal.
        """
        if name in type(self).model_fields:
            self.update(**{name: value})
        else:
            super().__setattr__(name, value)

    def update(self, **changes: Any) -> None:
        """Change fields in place, all validated together; for the form and ``%deepseek config``."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        if changes.get("provider", self.provider) != self.provider and "api_key" not in changes:
            values["api_key"] = None
        values.update(changes)
        checked = type(self).build(**values)  # all or nothing: validate before touching self
        for name in type(self).model_fields:
            object.__setattr__(self, name, getattr(checked, name))

    # ------------------------------------------------------------------ secrets

    @property
    def key_variable(self) -> str:
        """The environment variable that holds this provider's key."""
        return PROVIDER_KEY_VARIABLES[self.provider]

    def resolved_api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key to send: the one set explicitly, else the provider's variable."""
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        env = os.environ if environ is None else environ
        return env.get(self.key_variable) or None

    def public_dict(self) -> dict[str, Any]:
        """Every setting but the key, for display and saving."""
        data = self.model_dump(exclude={"api_key"})
        data["api_key_set"] = self.resolved_api_key() is not None
        return data


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def config_error(exc: ValidationError) -> ConfigError:
    """One line naming the field and the problem, without echoing the input."""
    first = exc.errors(include_input=False, include_url=False)[0]
    field = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    if not field or message.startswith(field):
        return ConfigError(message)
    return ConfigError(f"{field}: {message}")
