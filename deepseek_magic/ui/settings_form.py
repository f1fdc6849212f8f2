"""The settings form behind ``%deepseek settings``: widgets that edit the shared Settings.

Why it writes on every change (no separate "Apply" button): the form edits the
very :class:`~deepseek_magic.config.settings.Settings` object the magics and sessions
read, so the next cell uses what the form shows. Each change goes through
``Settings.update``, which validates everything together and changes nothing
when it raises; the form then shows the one-line :class:`ConfigError` and puts
the widget back to the value still in force, so form and settings never
disagree.

Why the key is handled apart (jupyter-engineering.md §6): widget state is
saved by JupyterLab (when enabled) and by nbclient (always, from the comm
``update`` messages), and a Text widget's repr shows its value. So the key is
typed into a :class:`SecretInput` (a ``Password`` whose value is never echoed
back to frontends), moved into the Settings' ``SecretStr`` the moment it
arrives, and the widget is cleared at once. Only a masked form
(``sk-…xy``) is ever shown.

Frontend events reach the kernel only while no cell runs (§2.2), so the form
applies a change when the kernel is idle; "Test connection" runs its two small
GETs inside the click handler, bounded by the settings' timeouts.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Unicode

from deepseek_magic.conversation.controllers import AccountClient, AccountController, ConnectionReport, describe_balance
from deepseek_magic.core import limits
from deepseek_magic.core.errors import ConfigError, mask, redact
from deepseek_magic.providers import get_provider, provider_names

if TYPE_CHECKING:
    from deepseek_magic.config.settings import Settings

__all__ = ["SecretInput", "SettingsForm", "describe_balance", "provider_models"]


def provider_models(provider: str) -> tuple[str, ...]:
    """The model names the registry knows for ``provider``, offered until a ``/models`` call tells us better."""
    try:
        return tuple(model.name for model in get_provider(provider).models)
    except ConfigError:
        return ()


THINKING_CHOICES: dict[str, bool | None] = {"default": None, "on": True, "off": False}
EFFORT_CHOICES: tuple[str, ...] = ("default", *limits.EFFORTS)
#: ``max_tokens`` shown while it is unset (the widget needs some number).
MAX_TOKENS_PLACEHOLDER = 8192

_STYLE = {"description_width": "8em"}


class SecretInput(widgets.Password):  # type: ignore[misc]
    """A ``Password`` field whose value is never echoed back over the comm.

    ipywidgets 8 answers every frontend update with an ``echo_update``
    message carrying the new value to all frontends; for a key that would put
    the secret on IOPub (and in anything recording it). ``echo_update=False``
    on the trait turns that off for this field only.
    """

    value = Unicode("", help="Cleared as soon as the kernel has taken the key.").tag(sync=True, echo_update=False)


class _OptionalNumber:
    """A checkbox ("send this parameter") beside a numeric widget.

    Settings use ``None`` for "not sent, let the provider decide", which a
    slider cannot show; the checkbox carries that third state.
    """

    def __init__(self, name: str, control: Any) -> None:
        self.name = name
        self.control = control
        self.enabled = widgets.Checkbox(value=False, description=name, indent=False, layout=widgets.Layout(width="9em"))
        self.box = widgets.HBox([self.enabled, control])

    @property
    def value(self) -> Any:
        return self.control.value if self.enabled.value else None

    def show(self, value: Any) -> None:
        """Display ``value`` (``None``: unchecked, the control keeps its last number)."""
        self.enabled.value = value is not None
        if value is not None:
            self.control.value = value

    def grey(self, ignored: bool) -> None:
        """Disable when the mode ignores the parameter; the control also while unchecked."""
        self.enabled.disabled = ignored
        self.control.disabled = ignored or not self.enabled.value

    def observe(self, callback: Callable[[Any], object]) -> None:
        self.enabled.observe(callback, "value")
        self.control.observe(callback, "value")


class SettingsForm:
    """Widgets for provider, model, generation parameters and the API key.

    ``form.widget`` is the container to display. Every widget edits the one
    Settings object (the "cache replies" box included: ``settings.cache``),
    and the form follows changes made elsewhere (``%deepseek config``,
    ``%config DeepSeekMagics.*``) through :meth:`Settings.add_listener`.

    To set the key from code use :meth:`set_key`: assigning
    ``form.api_key.value`` in the kernel would send the value to the frontend
    before the form could clear it.
    """

    def __init__(
        self,
        settings: Settings,
        client: AccountClient,
        *,
        providers: Sequence[str] | None = None,
    ) -> None:
        self.settings = settings
        #: Does the network work (models, balance); the form renders its reports.
        self.account = AccountController(settings, client)
        # The comm package logs every incoming widget message in full at DEBUG, which would write the key the
        # browser sends to the password field into any DEBUG log: keep that logger at INFO while the form lives.
        self._comm_log = logging.getLogger("Comm")
        self._comm_log_level = self._comm_log.level
        if self._comm_log.getEffectiveLevel() < logging.INFO:
            self._comm_log.setLevel(logging.INFO)
        self._syncing = False
        self._editing = False  # True while the form itself writes the Settings (no need to re-read them)
        names = list(providers) if providers is not None else provider_names()
        if settings.provider not in names:
            names.append(settings.provider)

        self.provider = widgets.Dropdown(options=names, description="provider", style=_STYLE)
        self.base_url = widgets.Text(
            description="base URL",
            placeholder="provider default",
            continuous_update=False,  # a half-typed URL is not an error
            style=_STYLE,
            layout=widgets.Layout(width="32em"),
        )
        self.model = widgets.Combobox(
            options=provider_models(settings.provider),
            description="model",
            continuous_update=False,
            ensure_option=False,
            style=_STYLE,
        )
        self.thinking = widgets.ToggleButtons(
            options=list(THINKING_CHOICES),
            description="thinking",
            tooltips=["provider default (on for V4)", "thinking on", "thinking off"],
            style={**_STYLE, "button_width": "6em"},
        )
        self.effort = widgets.Dropdown(options=EFFORT_CHOICES, description="effort", style=_STYLE)
        t_low, t_high = limits.RANGES["temperature"]
        p_low, p_high = limits.RANGES["top_p"]
        m_low, m_high = limits.RANGES["max_tokens"]
        self._temperature = _OptionalNumber(
            "temperature",
            widgets.FloatSlider(value=1.0, min=t_low, max=t_high, step=0.05, continuous_update=False),
        )
        self._top_p = _OptionalNumber(
            "top_p", widgets.FloatSlider(value=1.0, min=p_low, max=p_high, step=0.01, continuous_update=False)
        )
        self._max_tokens = _OptionalNumber(
            "max_tokens", widgets.BoundedIntText(value=MAX_TOKENS_PLACEHOLDER, min=int(m_low), max=int(m_high))
        )
        self.temperature, self.temperature_set = self._temperature.control, self._temperature.enabled
        self.top_p, self.top_p_set = self._top_p.control, self._top_p.enabled
        self.max_tokens, self.max_tokens_set = self._max_tokens.control, self._max_tokens.enabled
        self.json_mode = widgets.Checkbox(description="JSON replies by default", indent=False)
        self.stream = widgets.Checkbox(description="stream", indent=False)
        self.cache = widgets.Checkbox(value=settings.cache, description="cache replies", indent=False)

        self.api_key = SecretInput(
            description="API key",
            placeholder="paste the key, then Enter",
            continuous_update=False,  # one message on Enter/blur, never a key typed half-way
            style=_STYLE,
        )
        self.key_status = widgets.Label()
        self.clear_key_button = widgets.Button(description="Forget key", tooltip="Drop the key set here")
        self.refresh_button = widgets.Button(description="Refresh models", icon="refresh")
        self.test_button = widgets.Button(description="Test connection", icon="plug", button_style="info")
        self.done_button = widgets.Button(
            description="Done", icon="check", tooltip="Close the form and leave a summary (saved notebooks show it)"
        )
        #: Called by :meth:`done` with the summary text, after the widgets are closed.
        self.on_done: Callable[[str], None] | None = None
        self.status = widgets.Label()
        self.connection = widgets.HTML()

        self.widget = widgets.VBox(
            [
                widgets.HTML("<b>DeepSeek settings</b>"),
                self.provider,
                self.base_url,
                widgets.HBox([self.api_key, self.key_status, self.clear_key_button]),
                self.model,
                self.thinking,
                self.effort,
                self._temperature.box,
                self._top_p.box,
                self._max_tokens.box,
                widgets.HBox([self.json_mode, self.stream, self.cache]),
                widgets.HBox([self.refresh_button, self.test_button, self.done_button]),
                self.status,
                self.connection,
            ]
        )
        self.refresh()
        self._wire()
        settings.add_listener(self._on_settings_changed)

    def _on_settings_changed(self, changed: tuple[str, ...]) -> None:
        """Another surface changed the Settings: show the new values (the form's own edits land here too)."""
        if not self._syncing and not self._editing:
            self.refresh()

    # ------------------------------------------------------------------ display

    def __repr__(self) -> str:
        key = "set" if _resolved_key(self.settings)[0] else "not set"
        return f"SettingsForm(provider={self.settings.provider!r}, model={self.settings.model!r}, key {key})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Displaying the form displays its widget (so ``form`` alone in a cell works)."""
        return self.widget._repr_mimebundle_(**kwargs)

    # --------------------------------------------------------- settings → widgets

    def refresh(self) -> None:
        """Show what the Settings hold now (also after ``%deepseek config`` changed them)."""
        settings = self.settings
        self._syncing = True
        try:
            if settings.provider not in self.provider.options:
                self.provider.options = (*self.provider.options, settings.provider)
            self.provider.value = settings.provider
            self.base_url.value = settings.base_url or ""
            self.model.value = settings.model
            self.thinking.value = next(k for k, v in THINKING_CHOICES.items() if v is settings.thinking)
            self.effort.value = settings.effort or "default"
            self._temperature.show(settings.temperature)
            self._top_p.show(settings.top_p)
            self._max_tokens.show(settings.max_tokens)
            self.json_mode.value = settings.json_mode
            self.stream.value = settings.stream
            self.cache.value = settings.cache
        finally:
            self._syncing = False
        self._grey()
        self._show_key()

    def _grey(self) -> None:
        """Disable what the chosen mode ignores.

        DeepSeek ignores temperature and top_p in thinking mode (on by
        default for V4, hence ``None`` counts as on) and effort without it.
        """
        thinking_on = self.settings.thinking is not False
        self._temperature.grey(thinking_on)
        self._top_p.grey(thinking_on)
        self._max_tokens.grey(False)
        self.effort.disabled = not thinking_on

    def _show_key(self) -> None:
        settings = self.settings
        explicit = settings.api_key.get_secret_value() if settings.api_key is not None else ""
        resolved, problem = _resolved_key(settings)
        if explicit:
            self.key_status.value = f"key set ({mask(explicit)})"
        elif problem:
            self.key_status.value = f"✗ {problem}"
        elif resolved:
            self.key_status.value = f"key from {settings.key_variable} ({mask(resolved)})"
        else:
            self.key_status.value = f"no key: enter it here or set {settings.key_variable}"
        self.clear_key_button.disabled = not explicit

    # --------------------------------------------------------- widgets → settings

    def _wire(self) -> None:
        self.provider.observe(self._on_provider, "value")
        self.base_url.observe(lambda change: self._apply(base_url=change["new"].strip() or None), "value")
        self.model.observe(lambda change: self._apply(model=change["new"]), "value")
        self.thinking.observe(lambda change: self._apply(thinking=THINKING_CHOICES[change["new"]]), "value")
        self.effort.observe(
            lambda change: self._apply(effort=None if change["new"] == "default" else change["new"]), "value"
        )
        self._temperature.observe(lambda _: self._apply(temperature=self._temperature.value))
        self._top_p.observe(lambda _: self._apply(top_p=self._top_p.value))
        self._max_tokens.observe(lambda _: self._apply(max_tokens=self._max_tokens.value))
        self.json_mode.observe(lambda change: self._apply(json_mode=change["new"]), "value")
        self.stream.observe(lambda change: self._apply(stream=change["new"]), "value")
        self.cache.observe(lambda change: self._apply(cache=bool(change["new"])), "value")
        self.api_key.observe(self._on_key, "value")
        self.clear_key_button.on_click(lambda _: self.forget_key())
        self.refresh_button.on_click(lambda _: self.refresh_models())
        self.test_button.on_click(lambda _: self.test_connection())
        self.done_button.on_click(lambda _: self.done())

    def summary(self) -> str:
        """The settings in one line (never the key: only whether one is set)."""
        s = self.settings
        thinking = {None: "default", True: "on", False: "off"}[s.thinking]
        key = "key set" if _resolved_key(s)[0] else "no key"
        parts = [s.provider, s.model, f"thinking {thinking}", f"effort {s.effort or 'default'}", key]
        return "DeepSeek settings: " + " · ".join(parts)

    def done(self) -> str:
        """Close every widget of the form and hand its summary to :attr:`on_done`.

        A live widget saved in a notebook shows "Error displaying widget"
        after reopening (no kernel, no widget state); a closed one is replaced
        by the static summary, which reads fine anywhere.
        """
        text = self.summary()
        self.settings.remove_listener(self._on_settings_changed)
        for child in _all_widgets(self.widget):
            child.close()
        self._comm_log.setLevel(self._comm_log_level)
        if self.on_done is not None:
            self.on_done(text)
        return text

    def _apply(self, **changes: Any) -> bool:
        """Write ``changes`` into the Settings; on refusal say why and show the old values again."""
        if self._syncing:
            return True
        self._editing = True
        try:
            self.settings.update(**changes)
        except ConfigError as exc:
            self._editing = False
            self.status.value = f"✗ {_one_line(str(exc))}"
            self.refresh()  # nothing changed in the settings: put the widgets back
            return False
        finally:
            self._editing = False
        self.status.value = "✓ " + ", ".join(f"{name} = {getattr(self.settings, name)!r}" for name in changes)
        self._grey()
        return True

    def _on_provider(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        if self._apply(provider=change["new"]):
            # Models and the key belong to one provider: offer the defaults again, show the key state.
            self.model.options = provider_models(self.settings.provider)
            self.connection.value = ""
            self._show_key()

    def _on_key(self, change: dict[str, Any]) -> None:
        """Move a submitted key into the Settings and clear the widget at once."""
        submitted = change["new"]
        if not submitted:
            return
        self.api_key.value = ""  # first, before anything can fail: the key must not stay in widget state
        self.set_key(submitted)

    def set_key(self, key: str) -> None:
        """Use ``key`` for the current provider (what the key field does on Enter)."""
        key = key.strip()
        if not key:
            return
        try:
            self.settings.update(api_key=key)
        except ConfigError as exc:
            self.status.value = f"✗ {redact(_one_line(str(exc)), key)}"
            return
        self.status.value = f"✓ API key set for {self.settings.provider}"
        self._show_key()

    def forget_key(self) -> None:
        """Drop the key set in the form (the environment variable, if any, applies again)."""
        self.settings.update(api_key=None)
        self.status.value = "✓ API key forgotten"
        self._show_key()

    # -------------------------------------------------------------- connection

    def refresh_models(self) -> list[str] | None:
        """Ask the provider for its models and offer them in the model box."""
        with self._busy("Fetching models…"):
            report = self.account.fetch_models()
        return self._show_report(report).models

    def test_connection(self) -> str:
        """List the models and the balance (where the provider has one), or say exactly what failed.

        Returns the text shown, one finding per line.
        """
        with self._busy("Testing connection…"):
            report = self.account.test_connection()
        return self._show_report(report).text

    def _show_report(self, report: ConnectionReport) -> ConnectionReport:
        if report.models is not None:
            self._offer_models(report.models)
        self.connection.value = _html_lines(report.lines)
        return report

    def _offer_models(self, models: list[str]) -> None:
        options = list(dict.fromkeys([*models, self.settings.model]))
        self._syncing = True
        try:
            self.model.options = tuple(options)
        finally:
            self._syncing = False

    def _busy(self, note: str) -> _Busy:
        return _Busy(self, note)


class _Busy:
    """Buttons off and a note in the status while a request runs; back on after."""

    def __init__(self, form: SettingsForm, note: str) -> None:
        self.form = form
        self.note = note

    def __enter__(self) -> None:
        self.form.refresh_button.disabled = self.form.test_button.disabled = True
        self.form.status.value = self.note

    def __exit__(self, *exc_info: object) -> None:
        self.form.refresh_button.disabled = self.form.test_button.disabled = False
        self.form.status.value = ""


def _all_widgets(root: Any) -> list[Any]:
    """``root`` and every widget inside it (children, and each widget's layout/style models)."""
    found: list[Any] = []
    stack = [root]
    while stack:
        widget = stack.pop()
        if widget in found:
            continue
        found.append(widget)
        stack.extend(getattr(widget, "children", ()) or ())
        for part in ("layout", "style"):
            model = getattr(widget, part, None)
            if isinstance(model, widgets.Widget):
                stack.append(model)
    return found


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _html_lines(lines: list[str]) -> str:
    """Escaped: server messages are untrusted and the HTML widget inserts raw markup."""
    return "<br>".join(html.escape(line) for line in lines)


def _resolved_key(settings: Settings) -> tuple[str | None, str | None]:
    """(the key, None), or (None, why the key variable's value is refused: one line naming it, never the value)."""
    try:
        return settings.resolved_api_key(), None
    except ConfigError as exc:
        return None, str(exc)
