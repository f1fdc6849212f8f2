"""Controllers: the network work behind the settings form and the chat widget.

Why apart from ``ui/``: views only render. The settings form's "Test
connection" and "Refresh models" and the chat widget's "Send" need the
client or a session; doing those calls here keeps the widgets free of the
transport (``ui/`` never imports the client), and puts what a result means
(a model list, a balance, a one-line failure with the key masked) where a
test can check it without widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from deepseek_magic.core.errors import ConfigError, DeepSeekError, redact

if TYPE_CHECKING:
    from deepseek_magic.config.settings import Settings
    from deepseek_magic.conversation.session import Session
    from deepseek_magic.core.events import Event, Reply


class AccountClient(Protocol):
    """The two account calls the form needs (``ChatClient`` has them)."""

    def models(self, settings: Settings) -> list[str]: ...

    def balance(self, settings: Settings) -> Any: ...


@dataclass
class ConnectionReport:
    """What a check found: one line per finding, and the models when the provider listed them."""

    lines: list[str] = field(default_factory=list)
    models: list[str] | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class AccountController:
    """Lists models and reads the balance for the Settings in force; failures become one masked line."""

    def __init__(self, settings: Settings, client: AccountClient) -> None:
        self.settings = settings
        self.client = client

    def fetch_models(self) -> ConnectionReport:
        """``/models`` for the current provider."""
        try:
            models = self.client.models(self.settings)
        except Exception as exc:
            return ConnectionReport([f"✗ {self.describe(exc)}"])
        return ConnectionReport([f"✓ {len(models)} models: {', '.join(models) or '(none)'}"], models)

    def test_connection(self) -> ConnectionReport:
        """The models, then the balance where the provider has one; or exactly what failed."""
        try:
            models = self.client.models(self.settings)
        except Exception as exc:
            return ConnectionReport([f"✗ {self.describe(exc)}"])
        report = ConnectionReport([f"✓ connected · {len(models)} models: {', '.join(models) or '(none)'}"], models)
        try:
            balance = self.client.balance(self.settings)
        except ConfigError as exc:  # the provider has no balance endpoint
            report.lines.append(f"balance: {self.describe(exc)}")
        except Exception as exc:
            report.lines.append(f"✗ balance: {self.describe(exc)}")
        else:
            report.lines.append(f"balance: {describe_balance(balance)}")
        return report

    def describe(self, exc: BaseException) -> str:
        """One line for the person at the notebook, with the key masked should it appear."""
        text = one_line(str(exc)) or type(exc).__name__
        if not isinstance(exc, DeepSeekError):
            text = f"{type(exc).__name__}: {text}"
        return redact(text, *self.settings.secrets_to_redact())


class ChatController:
    """Sends a chat turn through the session the cells share; the widget only shows what comes back."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def send(
        self,
        text: str,
        *,
        key: str,
        on_event: Callable[[Event], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
        on_idle: Callable[[], object] | None = None,
    ) -> Reply:
        """One chat turn; ``on_idle`` is called while the stream is silent (the view's trailing flush)."""
        return self.session.ask(text, key=key, on_event=on_event, on_retry=on_retry, on_idle=on_idle)


def describe_balance(balance: Any) -> str:
    """DeepSeek's ``/user/balance`` body as one line, e.g. ``"100.00 USD (available)"``."""
    if not isinstance(balance, dict):
        return one_line(str(balance))[:200]
    parts = []
    for info in balance.get("balance_infos") or []:
        if isinstance(info, dict):
            parts.append(f"{info.get('total_balance', '?')} {info.get('currency', '')}".strip())
    text = ", ".join(parts) or "no balance figures"
    available = balance.get("is_available")
    if available is not None:
        text += " (available)" if available else " (not available for API calls)"
    return text


def one_line(text: str) -> str:
    return " ".join(text.split())
