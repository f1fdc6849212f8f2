"""The ``%deepseek SUBCOMMAND`` line magic: sessions, usage, account, config.

Each subcommand is a small function taking the magics object and its words;
output goes through ``display`` as a Markdown table with a plain-text twin, so
it reads well in a notebook, a terminal and a saved file alike.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from deepseek_magic.ipython.line_words import parser_tokens

if TYPE_CHECKING:
    from deepseek_magic.conversation.session import Session
    from deepseek_magic.ipython.magics import DeepSeekMagics
    from deepseek_magic.providers import HttpCall

Handler = Callable[["DeepSeekMagics", list[str]], Any]

HELP = """\
%%deepseek [options]   the cell body is the prompt; {name} inserts a variable ({{ }} for literal braces)
%deepseek settings              a form for provider, key, model and parameters (with Test connection)
%deepseek chat [-s NAME]        a chat box sharing the session with the cells
%deepseek history [-s NAME]     turns of a session: cell, model, tokens, status
%deepseek reset [NAME | --all]  forget a session's turns
%deepseek sessions              every session with its size
%deepseek usage                 tokens (and cost, where known) per session
%deepseek models                models the provider offers to your key
%deepseek balance               account balance (DeepSeek)
%deepseek config [KEY=VALUE …]  show or change settings (not the key: use the environment)
%deepseek cache [clear]         how many replies are cached; clear empties the cache
%deepseek save PATH [-s NAME]   write a session to a JSON file
%deepseek load PATH [-s NAME]   read a session back
%deepseek help                  this text; %%deepseek? documents every cell option"""


def run_subcommand(magics: DeepSeekMagics, line: str) -> Any:
    words = parser_tokens(line)
    if not words:
        return show_help(magics, [])
    name, rest = words[0].lower(), words[1:]
    handler = HANDLERS.get(name)
    if handler is None:
        raise UsageError(f"unknown subcommand {name!r}; one of: {', '.join(sorted(HANDLERS))}")
    from deepseek_magic.core.errors import DeepSeekError

    try:
        return handler(magics, rest)
    except UsageError:
        raise
    except DeepSeekError:
        raise
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def show(markdown: str, plain: str) -> None:
    """Markdown (built only from :mod:`.ui.render`'s escapers) with its plain-text twin."""
    from IPython.display import display

    from deepseek_magic.core.errors import strip_controls

    display({"text/markdown": markdown, "text/plain": strip_controls(plain)}, raw=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, str]:
    """A Markdown table and an aligned plain-text one; every cell is text (a prompt preview, a server's model id)."""
    from deepseek_magic.ui.render import markdown_text

    cells = [[str(value) for value in row] for row in rows]
    escape = lambda text: markdown_text(" ".join(text.split()))  # noqa: E731
    markdown = "| " + " | ".join(headers) + " |\n|" + "---|" * len(headers) + "\n"
    markdown += "".join("| " + " | ".join(escape(c) for c in row) + " |\n" for row in cells)
    widths = [max(len(h), *(len(row[i]) for row in cells)) if cells else len(h) for i, h in enumerate(headers)]
    plain = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n"
    plain += "".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in cells)
    return markdown, plain


def _session_option(words: list[str]) -> tuple[str | None, list[str]]:
    name = None
    rest: list[str] = []
    iterator = iter(words)
    for word in iterator:
        if word in ("-s", "--session"):
            name = next(iterator, None)
            if name is None:
                raise UsageError(f"{word} needs a session name")
        else:
            rest.append(word)
    return name, rest


def _preview(text: str, width: int = 48) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def show_help(magics: DeepSeekMagics, words: list[str]) -> None:
    """The subcommands, then the registered providers (plugins included) with their variables and models."""
    from deepseek_magic.providers import catalog
    from deepseek_magic.ui.render import markdown_code

    plain = f"{HELP}\n\nProviders (--provider NAME; key and base-URL variables; models):\n{catalog.plain_text()}"
    show(markdown_code(plain), plain)


def show_history(magics: DeepSeekMagics, words: list[str]) -> None:
    from deepseek_magic.ui.render import markdown_text

    name, rest = _session_option(words)
    if rest:
        raise UsageError(f"history takes only -s NAME, not {' '.join(rest)!r}")
    session = magics.get_session(name)
    rows = []
    for index, turn in enumerate(session.turns, 1):
        usage = turn.reply.usage
        tokens = f"{usage.prompt_tokens:,}+{usage.completion_tokens:,}" if usage else "-"
        cost = f"${usage.cost:.4f}" if usage and usage.cost is not None else "-"
        rows.append([index, turn.key, turn.model, _preview(turn.prompt), tokens, cost, turn.status])
    if not rows:
        title = markdown_text(session.name)
        show(f"Session **{title}** has no turns yet.", f"Session {session.name} has no turns yet.")
        return
    markdown, plain = table(["#", "cell", "model", "prompt", "tokens", "cost", "status"], rows)
    show(f"Session **{markdown_text(session.name)}**\n\n{markdown}", f"Session {session.name}\n{plain}")


def reset(magics: DeepSeekMagics, words: list[str]) -> None:
    if words == ["--all"]:
        for session in magics.sessions.values():
            session.reset()
        print("All sessions reset.")
        return
    if len(words) > 1:
        raise UsageError("reset takes one session name, or --all")
    session = magics.get_session(words[0] if words else None)
    session.reset()
    print(f"Session {session.name} reset.")


def list_sessions(magics: DeepSeekMagics, words: list[str]) -> None:
    magics.get_session()  # the default one always exists
    sessions = sorted(magics.sessions.items())
    rows = [[name, len(s.turns), s.settings.model, f"{s.usage.total_tokens:,}"] for name, s in sessions]
    show(*table(["session", "turns", "model", "tokens"], rows))


def show_usage(magics: DeepSeekMagics, words: list[str]) -> None:
    from deepseek_magic.core.events import Usage

    total = Usage()
    rows = []
    for name, session in sorted(magics.sessions.items()):
        usage = session.usage
        total = total + usage
        rows.append(_usage_row(name, len(session.turns), usage))
    rows.append(_usage_row("total", sum(len(s.turns) for s in magics.sessions.values()), total))
    show(*table(["session", "turns", "prompt", "cached", "completion", "reasoning", "cost"], rows))


def _usage_row(name: str, turns: int, usage: Any) -> list[Any]:
    cost = f"${usage.cost:.4f}" if usage.cost is not None else "-"
    return [
        name,
        turns,
        f"{usage.prompt_tokens:,}",
        f"{usage.cache_hit_tokens:,}",
        f"{usage.completion_tokens:,}",
        f"{usage.reasoning_tokens:,}",
        cost,
    ]


def list_models(magics: DeepSeekMagics, words: list[str]) -> None:
    models = magics.client.models(magics.settings)
    rows = [[model, "✓" if model == magics.settings.model else ""] for model in models]
    show(*table(["model", "current"], rows))


def show_balance(magics: DeepSeekMagics, words: list[str]) -> None:
    balance = magics.client.balance(magics.settings)
    infos = balance.get("balance_infos") or [] if isinstance(balance, dict) else []
    fields = ("currency", "total_balance", "granted_balance", "topped_up_balance")
    rows = [[info.get(field, "") for field in fields] for info in infos if isinstance(info, dict)]
    available = balance.get("is_available") if isinstance(balance, dict) else None
    markdown, plain = table(["currency", "total", "granted", "topped up"], rows)
    note = "" if available is None else f"Available for API calls: {'yes' if available else 'no'}\n"
    show(note + "\n" + markdown, note + plain)


SECRET_FIELDS = {"api_key", "key", "apikey", "api-key"}


def configure(magics: DeepSeekMagics, words: list[str]) -> None:
    settings = magics.settings
    if not words:
        data = settings.public_dict()
        show(*table(["setting", "value"], [[name, repr(value)] for name, value in data.items()]))
        return
    changes: dict[str, Any] = {}
    for word in words:
        name, sep, raw = word.partition("=")
        name = name.strip().replace("-", "_")
        if not sep:
            raise UsageError(f"config takes KEY=VALUE pairs, got {word!r}")
        if name.lower() in SECRET_FIELDS:
            raise UsageError("the API key is not set with %deepseek config; use %deepseek settings or the environment")
        if name not in type(settings).model_fields:
            raise UsageError(f"unknown setting {name!r}; %deepseek config lists them")
        changes[name] = _literal(raw)
    settings.update(**changes)
    print(", ".join(f"{name} = {getattr(settings, name)!r}" for name in changes))


def _literal(raw: str) -> Any:
    text = raw.strip()
    if text.lower() in ("none", "null", ""):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def save(magics: DeepSeekMagics, words: list[str]) -> None:
    name, rest = _session_option(words)
    if len(rest) != 1:
        raise UsageError("save takes one PATH (and optionally -s NAME)")
    session = magics.get_session(name)
    try:
        path = session.save(rest[0])
    except OSError as exc:  # permission, a missing mount, a full disk: one line, like every refusal
        raise UsageError(f"could not save to {rest[0]}: {exc.strerror or exc}") from None
    print(f"Session {session.name} ({len(session.turns)} turns) saved to {path}")


def load(magics: DeepSeekMagics, words: list[str]) -> None:
    from deepseek_magic.conversation.session import Session

    name, rest = _session_option(words)
    if len(rest) != 1:
        raise UsageError("load takes one PATH (and optionally -s NAME)")
    session = Session.load(rest[0], settings=magics.settings, client=magics.client)
    if name:
        session.name = name
    magics.sessions[session.name] = session
    print(f"Session {session.name} loaded: {len(session.turns)} turns")


def settings_form(magics: DeepSeekMagics, words: list[str]) -> Any:
    """The settings form; it edits the same Settings object every cell reads."""
    if words:
        raise UsageError("settings takes no arguments")
    from IPython.display import display

    from deepseek_magic.ui.render import markdown_text
    from deepseek_magic.ui.settings_form import SettingsForm

    form = SettingsForm(magics.settings, magics.client)
    handle = display(form.widget, display_id=True)
    if handle is not None:
        form.on_done = lambda text: handle.update(
            {"text/plain": text, "text/markdown": f"*{markdown_text(text)}*"}, raw=True
        )
    magics.last_form = form
    return None


def chat(magics: DeepSeekMagics, words: list[str]) -> Any:
    """A chat box whose turns join the session the cells use."""
    name, rest = _session_option(words)
    if rest:
        raise UsageError(f"chat takes only -s NAME, not {' '.join(rest)!r}")
    from IPython.display import display

    from deepseek_magic.ui.chat_widget import ChatWidget

    widget = ChatWidget(magics.get_session(name))
    display(widget.widget)
    magics.last_chat = widget
    return None


def cache(magics: DeepSeekMagics, words: list[str]) -> None:
    """``cache``: size and place of the reply cache; ``cache clear`` empties it."""
    from deepseek_magic.client.cache import default_cache

    store = default_cache()
    if words == ["clear"]:
        print(f"Reply cache cleared: {store.clear():,} replies removed.")
    elif not words:
        state = "on" if magics.settings.cache else "off"
        print(f"Reply cache ({state}): {len(store):,} replies in {store.path}")
    else:
        raise UsageError("cache takes nothing or 'clear'")


def show_dry_run(session: Session, call: HttpCall) -> None:
    """The exact request, key masked, as JSON; nothing is sent."""
    from deepseek_magic.core.errors import mask
    from deepseek_magic.providers import get_provider

    settings = session.settings
    key = settings.resolved_api_key()
    headers = dict(call.headers)
    auth = get_provider(settings.provider).auth_headers(mask(key) if key else "(no key set)")
    headers.update(auth)
    document = {"method": call.method, "url": call.url, "headers": headers, "body": call.body}
    text = json.dumps(document, indent=2, ensure_ascii=False)
    from deepseek_magic.ui.render import markdown_code

    show(f"Dry run: nothing was sent.\n\n{markdown_code(text, 'json')}", f"Dry run: nothing was sent.\n{text}")


HANDLERS: dict[str, Handler] = {
    "help": show_help,
    "settings": settings_form,
    "chat": chat,
    "history": show_history,
    "reset": reset,
    "sessions": list_sessions,
    "usage": show_usage,
    "models": list_models,
    "balance": show_balance,
    "config": configure,
    "cache": cache,
    "save": save,
    "load": load,
}
