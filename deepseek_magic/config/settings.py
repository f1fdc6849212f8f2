"""Settings: one validated model for everything a request depends on.

Why one model: the magics, the settings form, the chat widget and the Python
API all read and write the same object, so a value checked here is checked
for every entry point, before anything is sent. Limits come from
:mod:`deepseek_magic.core.limits`, the same table the emulator enforces.

The API key is a ``SecretStr``: its repr and str are masked, and it is only
unwrapped at the moment a request header is built (inside the client's
``httpx.Auth`` flow). A key with whitespace, control or non-ASCII characters
is refused with one line naming its variable: httpx would otherwise quote the
whole header, key included, in its error. Pickling drops the key (the other
side reads its own environment), and no other field takes a value that looks
like a key, so a key pasted into the wrong field is never echoed back.

The key belongs to one provider, and so does the base URL: switching provider
drops both (the new provider's ``*_BASE_URL`` variable applies), so a DeepSeek
key is never sent to a reseller, nor a reseller's key to DeepSeek's base URL.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from deepseek_magic.core import limits
from deepseek_magic.core.errors import ConfigError

Effort = limits.Effort

#: DeepSeek's own name for Flash since 2026-09-10 (V4.1-Flash); other providers default to their first model.
DEFAULT_MODEL = "deepseek-flash"

#: ``sk-`` keys (DeepSeek, Anyfast, Evolink, the emulator) and long opaque tokens (Runware's keys are 32 characters).
_KEY_LIKE = re.compile(r"(?<![\w-])sk-[A-Za-z0-9_-]{6,}|(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])\b[A-Za-z0-9]{32,}\b")
#: Fields whose values are shown back (status lines, %deepseek config, the form) and so must never hold a key.
_SHOWN_TEXT_FIELDS = ("base_url", "model", "user_id", "stop", "extra_headers")


def key_problem(name: str, key: str) -> str | None:
    """Why ``key`` cannot be sent, naming ``name`` (a variable or field) and never the value."""
    if not key.isascii() or not key.isprintable() or any(char.isspace() for char in key):
        return (
            f"{name} contains whitespace, a control character or a non-ASCII character; "
            "an API key has none (a .env file saved with CRLF line endings adds a CR)"
        )
    return None


def looks_like_key(text: str) -> bool:
    """True when ``text`` contains something shaped like an API key."""
    return _KEY_LIKE.search(text) is not None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [str(item) for pair in value.items() for item in pair]
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return []


class Settings(BaseModel):
    """Provider, model, generation parameters, transport behaviour."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    provider: str = Field(default="deepseek", description="Any registered provider name.")
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
    cache: bool = Field(
        default=True, description="Answer identical re-runs and batch rows from the reply cache (the one switch)."
    )

    #: Called with the names of changed fields after each :meth:`update`: the magics' traits and an open
    #: settings form follow the one Settings object this way, whichever surface made the change.
    _listeners: list[Callable[[tuple[str, ...]], None]] = PrivateAttr(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _provider_default_model(cls, values: Any) -> Any:
        """Without a model, the provider's own default: ``deepseek-flash`` at DeepSeek, a reseller's V4 name."""
        if (
            isinstance(values, dict)
            and values.get("model") is None
            and values.get("provider") not in (None, "deepseek")
        ):
            from deepseek_magic.providers import get_provider

            try:
                models = get_provider(str(values["provider"]).strip().lower()).models
            except ConfigError:
                return values  # the provider check names the choices
            if models:
                values = {**values, "model": models[0].name}
        return values

    @model_validator(mode="before")
    @classmethod
    def _no_key_in_shown_fields(cls, values: Any) -> Any:
        # Before any field check: those quote the value they refuse (an invalid URL, say).
        if isinstance(values, dict):
            for name in _SHOWN_TEXT_FIELDS:
                if any(looks_like_key(text) for text in _texts(values.get(name))):
                    raise ValueError(
                        f"{name} looks like an API key; it was not stored or shown. "
                        "Set the key in %deepseek settings or the provider's key variable"
                    )
        return values

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        from deepseek_magic.providers import (
            provider_names,  # the registry imports this module: looked up when first needed
        )

        value = value.strip().lower()
        names = provider_names()
        if value not in names:
            raise ValueError(f"unknown provider {value!r}; choose one of: {', '.join(names)}")
        return value

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            problem = key_problem("api_key", value.get_secret_value())
            if problem:
                raise ValueError(problem)
        return value

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
            raise ValueError("base_url must be an http(s) URL with a host")  # not echoed: it may be a pasted secret
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
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, check_key: bool = True, **overrides: Any
    ) -> Settings:
        """Settings from ``DEEPSEEK_PROVIDER``, ``DEEPSEEK_MODEL`` and the provider's own ``*_BASE_URL``.

        The key is not copied here: :meth:`resolved_api_key` reads the
        provider's key variable when it is needed, so a key exported after the
        extension loaded is still found. It is checked here though (unless
        ``check_key`` is false), so a key with a stray CR is refused when
        settings load, before anything is sent. The magics pass ``False``: the
        settings form must still open to say what is wrong and take a good key;
        every request refuses the bad one anyway.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("DEEPSEEK_PROVIDER"):
            values["provider"] = env["DEEPSEEK_PROVIDER"].strip().lower()
        if env.get("DEEPSEEK_MODEL"):
            values["model"] = env["DEEPSEEK_MODEL"]
        values.update(overrides)
        if "base_url" not in overrides:
            values["base_url"] = _env_base_url(str(values.get("provider", "deepseek")), env)
        settings = cls.build(**values)
        if check_key:
            settings.resolved_api_key(env)
        return settings

    def merged(self, **overrides: Any) -> Settings:
        """A validated copy with ``overrides`` applied (``None`` values are skipped).

        A change of provider without a new key drops the current key: keys are
        never carried from one provider to another.
        """
        updates = {key: value for key, value in overrides.items() if value is not None}
        if not updates:
            return self
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update(_provider_switch(self.provider, updates, self.model))
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
        values.update(_provider_switch(self.provider, changes, self.model))
        values.update(changes)
        checked = type(self).build(**values)  # all or nothing: validate before touching self
        changed = tuple(name for name in type(self).model_fields if getattr(self, name) != getattr(checked, name))
        for name in type(self).model_fields:
            object.__setattr__(self, name, getattr(checked, name))
        if changed:
            for listener in list(self._listeners):
                listener(changed)

    def add_listener(self, listener: Callable[[tuple[str, ...]], None]) -> None:
        """Call ``listener(changed_names)`` after every change made through :meth:`update` or assignment."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[tuple[str, ...]], None]) -> None:
        """Stop calling ``listener`` (a closed form, an unloaded extension)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ------------------------------------------------------------------ secrets

    @property
    def key_variable(self) -> str:
        """The environment variable that holds this provider's key (the provider object owns it)."""
        return key_variable(self.provider)

    @property
    def base_url_variable(self) -> str:
        """The environment variable that overrides this provider's base URL (the provider object owns it)."""
        return base_url_variable(self.provider)

    def resolved_api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key to send: the one set explicitly, else the provider's variable.

        Raises :class:`ConfigError` naming the variable (never the value) when
        the variable's value has whitespace, control or non-ASCII characters.
        """
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        env = os.environ if environ is None else environ
        problem = key_problem(self.key_variable, env.get(self.key_variable) or "")
        if problem:
            raise ConfigError(problem)
        return env.get(self.key_variable) or None

    def secrets_to_redact(self, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
        """Every form of the key a message might echo, valid or not: for masking error text, never raises."""
        env = os.environ if environ is None else environ
        explicit = self.api_key.get_secret_value() if self.api_key is not None else ""
        raw = env.get(self.key_variable) or ""
        return tuple(dict.fromkeys(text for text in (explicit, raw, raw.strip()) if text))

    def __getstate__(self) -> dict[Any, Any]:
        """Pickled without the key: a copy sent to another process reads that process's key variable."""
        state = dict(super().__getstate__())
        fields = dict(state.get("__dict__", {}))
        fields["api_key"] = None
        state["__dict__"] = fields
        state["__pydantic_private__"] = {"_listeners": []}  # callbacks belong to this process's widgets and magics
        return state

    def public_dict(self) -> dict[str, Any]:
        """Every setting but the key, for display and saving."""
        data = self.model_dump(exclude={"api_key"})
        data["api_key_set"] = bool(self.secrets_to_redact())
        return data


def default_settings() -> Settings:
    """What ``Session()`` starts from: the notebook's shared Settings when the magics are loaded, else the environment.

    So a ``Session()`` made in a notebook reads and writes the same values as the cells, ``%config``,
    ``%deepseek config`` and the form. A script without the magics reads the environment as before. The
    magics are found through ``sys.modules`` (never imported here: this layer does not know IPython).
    """
    magics_module = sys.modules.get("deepseek_magic.ipython.magics")
    loaded = getattr(magics_module, "LOADED", None)
    if loaded is not None:
        settings: Settings = loaded.settings
        settings.resolved_api_key()  # a malformed key variable is refused here, as from_env does
        return settings
    return Settings.from_env()


def key_variable(provider: str) -> str:
    """The variable holding ``provider``'s key; :class:`ConfigError` for an unknown provider."""
    from deepseek_magic.providers import get_provider

    return get_provider(provider).key_variable


def base_url_variable(provider: str) -> str:
    """The variable overriding ``provider``'s base URL; :class:`ConfigError` for an unknown provider."""
    from deepseek_magic.providers import get_provider

    return get_provider(provider).base_url_variable


def _env_base_url(provider: str, env: Mapping[str, str]) -> str | None:
    try:
        variable = base_url_variable(provider)
    except ConfigError:
        return None  # an unknown provider: the provider check says so in one line
    return env.get(variable) or None


def _provider_switch(current: str, changes: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
    """What a change of provider resets: the key and the base URL belong to the old provider.

    The model follows too when the old provider knows it and the new one does not: DeepSeek's ``deepseek-flash``
    becomes a reseller's ``deepseek-v4-flash`` (they share a name), anything else the new provider's first model.
    A model name neither provider lists is left alone (a custom deployment name).
    """
    provider = changes.get("provider", current)
    if provider == current:
        return {}
    reset: dict[str, Any] = {}
    if "api_key" not in changes:
        reset["api_key"] = None
    if "base_url" not in changes:
        reset["base_url"] = _env_base_url(str(provider), os.environ)
    if model is not None and "model" not in changes:
        translated = _translate_model(model, current, str(provider))
        if translated is not None:
            reset["model"] = translated
    return reset


def _translate_model(model: str, old: str, new: str) -> str | None:
    from deepseek_magic.providers import get_provider

    try:
        old_models, new_models = get_provider(old).models, get_provider(new).models
    except ConfigError:
        return None
    known = next((m for m in old_models if model == m.name or model in m.aliases), None)
    if known is None or any(model == m.name or model in m.aliases for m in new_models) or not new_models:
        return None
    names = {known.name, *known.aliases}
    same = next((m for m in new_models if names & {m.name, *m.aliases}), None)
    return (same or new_models[0]).name


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
