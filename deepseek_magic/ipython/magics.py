"""``%%deepseek`` and ``%deepseek``: parsing, interpolation, choosing a view.

This layer talks no HTTP and builds no JSON body: it turns a cell into a
:meth:`Session.ask` call and a view. Heavy modules (httpx, pydantic, the
client) are imported on first use so that ``%load_ext`` stays instant.

Options are declared with ``@magic_arguments`` (so ``%%deepseek?`` documents
each one); unknown, duplicate or invalid options raise a one-line
``UsageError`` before anything is sent. Configuration traits
(``%config DeepSeekMagics.model = ...``, ``c.DeepSeekMagics.*``) are views of
the one shared :class:`~deepseek_magic.config.settings.Settings`: a trait change is
validated by and written into the Settings, and a Settings change (``%deepseek
config``, the form) is written back into the traits, so every surface reads
the same value. The API key is deliberately not a trait, because ``%config``
prints every trait.
"""

from __future__ import annotations

import contextlib
import keyword
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, validate

from deepseek_magic.core.limits import EFFORTS

if TYPE_CHECKING:
    from deepseek_magic.client import ChatClient
    from deepseek_magic.config.settings import Settings
    from deepseek_magic.conversation.session import Session
    from deepseek_magic.core.events import Reply
    from deepseek_magic.ui.base import ReplyView

_Method = TypeVar("_Method", bound=Callable[..., Any])


class _ProviderChoices:
    """``--provider`` choices read from the provider registry when a cell is parsed, not when the module loads.

    Importing the registry (pydantic, entry points) at ``%load_ext`` would slow it down, and a provider package
    installed later would be missed.
    """

    def _names(self) -> list[str]:
        from deepseek_magic.providers import provider_names

        return provider_names()

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Any:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


PROVIDER_CHOICES: Any = _ProviderChoices()
#: Traits that mirror a Settings field of the same name (the rest are display and batch choices of the magics).
SETTINGS_TRAITS = ("model", "provider", "effort", "thinking", "temperature", "max_tokens", "cache")
#: Settings fields that have no "unset": ``None`` in their trait means "leave the setting as it is".
_REQUIRED = ("model", "provider", "cache")
#: Options that may be given more than once.
REPEATABLE = {"stop"}
#: Names IPython keeps for itself: ``--out`` must not overwrite them (``_ih`` or ``Out`` turned into a string
#: breaks every later cell until a restart).
IPYTHON_NAMES = frozenset(
    {"In", "Out", "_ih", "_oh", "_dh", "_", "__", "___", "_i", "_ii", "_iii", "get_ipython", "exit", "quit"}
)
_IPYTHON_NUMBERED = re.compile(r"^_i?\d+$")
KEY_PATTERN = re.compile(r"(?i)(--?(api[-_]?)?key\b|api[-_]?key\s*=|\bsk-[A-Za-z0-9_\-]{6,})")


def named_line_magic(name: str) -> Callable[[_Method], _Method]:
    """IPython's ``line_magic(name)``, typed as the decorator it is (IPython 9 annotates it as a union)."""
    return cast("Callable[[_Method], _Method]", line_magic(name))


@magics_class
class DeepSeekMagics(Magics):
    """DeepSeek V4 in cells: ``%%deepseek [options]`` with the prompt as the cell body."""

    model = Unicode(None, allow_none=True, help="Default model (e.g. deepseek-v4-pro).").tag(config=True)
    provider = Unicode(None, allow_none=True, help="Default provider (any registered name).").tag(config=True)
    effort = Enum(list(EFFORTS), default_value=None, allow_none=True, help="Default reasoning effort.").tag(config=True)
    thinking = Bool(None, allow_none=True, help="Thinking on/off by default (None: provider default).").tag(config=True)
    temperature = Float(None, allow_none=True, help="Default temperature (no effect in thinking mode).").tag(
        config=True
    )
    max_tokens = Int(None, allow_none=True, help="Default max_tokens.").tag(config=True)
    view = Enum(["auto", "widget", "text"], default_value="auto", help="How replies are shown.").tag(config=True)
    session = Unicode("default", help="The session cells use unless -s NAME is given.").tag(config=True)
    interpolation_budget = Int(4000, help="Characters each interpolated non-string value may take.").tag(config=True)
    batch_confirm_above = Float(
        1.0, allow_none=True, help="USD: a --over batch estimated above this needs --confirm (None: never ask)."
    ).tag(config=True)
    cache = Bool(None, allow_none=True, help="Answer identical cell re-runs and batch rows from the reply cache.").tag(
        config=True
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        self._settings: Settings | None = None
        self._mirroring = False
        super().__init__(shell=shell, **kwargs)
        self._client: ChatClient | None = None
        self.sessions: dict[str, Session] = {}
        self._cell_id: str | None = None
        self.last_reply: Reply | None = None
        self.last_form: Any = None
        self.last_chat: Any = None

    # ------------------------------------------------------- traits ⇄ Settings

    @validate(*SETTINGS_TRAITS)
    def _into_settings(self, proposal: Any) -> Any:
        """A trait change is a Settings change: validated there (one line on refusal), then stored in both."""
        name, value = proposal["trait"].name, proposal["value"]
        settings = getattr(self, "_settings", None)
        if getattr(self, "_mirroring", False) or settings is None:
            return value  # copying from the Settings, or not built yet (applied when they are)
        if value is None and name in _REQUIRED:
            raise TraitError(f"DeepSeekMagics.{name} cannot be None")
        from deepseek_magic.core.errors import ConfigError

        try:
            settings.update(**{name: value})
        except ConfigError as exc:
            raise TraitError(str(exc)) from None
        return value

    def _from_settings(self, changed: tuple[str, ...]) -> None:
        """Copy changed Settings fields into the traits (the other direction; never writes the Settings)."""
        settings = self._settings
        if settings is None:
            return
        self._mirroring = True
        try:
            for name in SETTINGS_TRAITS:
                if name in changed and getattr(self, name) != getattr(settings, name):
                    setattr(self, name, getattr(settings, name))
        finally:
            self._mirroring = False

    # ------------------------------------------------------------- lifecycle

    def pre_run_cell(self, info: Any) -> None:
        """Remember the cell id the frontend sent (JupyterLab, Notebook 7, nbclient, VS Code)."""
        self._cell_id = getattr(info, "cell_id", None) or None

    def post_run_cell(self, result: Any) -> None:
        self._cell_id = None

    def close(self) -> None:
        if self._settings is not None:
            self._settings.remove_listener(self._from_settings)
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------ shared state

    @property
    def settings(self) -> Settings:
        """The settings every session of this shell shares (the form edits them)."""
        if self._settings is None:
            from deepseek_magic.config.settings import Settings
            from deepseek_magic.core.errors import ConfigError

            settings = Settings.from_env(check_key=False)  # the form must open to fix a refused key
            configured = {name: getattr(self, name) for name in SETTINGS_TRAITS if getattr(self, name) is not None}
            try:
                settings.update(**configured)  # c.DeepSeekMagics.* from a profile, set before the Settings existed
            except ConfigError as exc:
                raise UsageError(f"DeepSeekMagics configuration: {exc}") from None
            settings.add_listener(self._from_settings)
            self._settings = settings
            self._from_settings(SETTINGS_TRAITS)
        return self._settings

    @property
    def client(self) -> ChatClient:
        if self._client is None:
            from deepseek_magic.client import ChatClient

            self._client = ChatClient()
        return self._client

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's namespace (where ``{name}`` is looked up and ``--out`` stores)."""
        if self.shell is None:
            raise UsageError("the DeepSeek magics need an IPython shell")
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def get_session(self, name: str | None = None) -> Session:
        """The named session, created on first use with the shared settings."""
        from deepseek_magic.conversation.session import Session

        name = name or self.session
        if name not in self.sessions:
            self.sessions[name] = Session(name, settings=self.settings, client=self.client)
        return self.sessions[name]

    def cell_key(self) -> str:
        """The turn key: the frontend's cell id, else this execution's own identity.

        A terminal has no cell ids and every execution is new input, so each
        gets its own turn (numbered for ``%deepseek history``).
        """
        if self._cell_id:
            return f"cell-{self._cell_id}"
        count = getattr(self.shell, "execution_count", 0)
        return f"exec-{count}-{uuid.uuid4().hex[:8]}"

    # -------------------------------------------------------------- %%deepseek

    @magic_arguments()
    @argument("-m", "--model", help="Model id, e.g. deepseek-v4-flash or deepseek-v4-pro.")
    @argument("--provider", choices=PROVIDER_CHOICES, help="Where to send the request.")
    @argument("--think", dest="thinking", action="store_const", const=True, help="Thinking mode on.")
    @argument("--no-think", dest="thinking", action="store_const", const=False, help="Thinking mode off.")
    @argument("--effort", choices=list(EFFORTS), help="Reasoning effort (thinking mode).")
    @argument("--system", help="System prompt (kept for later cells of the session).")
    @argument("-t", "--temperature", type=float, help="0–2; no effect in thinking mode.")
    @argument("--top-p", type=float, help="0–1.")
    @argument("--max-tokens", type=int, help="1–384000; reasoning counts towards it.")
    @argument("--stop", action="append", help="Stop sequence (repeatable, at most 16; \\n and \\t understood).")
    @argument("--seed", type=int, help="Sampling seed, where the provider honours it.")
    @argument("--json", action="store_true", help="JSON mode: the reply is parsed into Python data.")
    @argument("--schema", help="Validate JSON against a pydantic model or JSON-schema dict named in the namespace.")
    @argument("-o", "--out", help="Store the reply in this variable (str, or the parsed data in JSON mode).")
    @argument("-s", "--session", help="Session name (default: 'default').")
    @argument("--new", action="store_true", help="Start the session afresh.")
    @argument("--tools", help="Python callables in the namespace, comma-separated.")
    @argument("--no-stream", action="store_true", help="Wait for the whole reply instead of streaming.")
    @argument("--dry-run", action="store_true", help="Show the exact request (key masked); send nothing.")
    @argument("--no-cache", action="store_true", help="Always ask the model, never a cached reply.")
    @argument("--view", choices=["auto", "widget", "text"], help="How to show the reply.")
    @argument("--over", help="A DataFrame or list: run the cell once per row (the cell is the template).")
    @argument("--raw", action="store_true", help="Send the cell exactly as typed: no {name} interpolation.")
    @argument("-n", "--choices", type=int, help="Ask for N alternative replies (Evolink: 1–8); --out stores a list.")
    @argument("--logprobs", type=int, metavar="K", help="Show token log-probabilities with the top K alternatives.")
    @argument("--user-id", help="DeepSeek/Anyfast user_id (Evolink: user) for isolation and caching.")
    @argument("--prefix", help="Continue this assistant text (DeepSeek chat prefix completion, beta; \\n understood).")
    @argument(
        "--strict", action="store_true", help="Strict function tools (DeepSeek beta): arguments follow the schema."
    )
    @argument("--async-delivery", action="store_true", help="Runware: submit the task and poll for the result.")
    @argument("--concurrency", type=int, default=16, help="With --over: requests in flight at once (default 16).")
    @argument("--confirm", action="store_true", help="With --over: go ahead although the cost estimate is high.")
    @no_var_expand
    @cell_magic
    def deepseek(self, line: str, cell: str) -> None:
        """Ask DeepSeek: the cell body is the user message; ``{name}`` inserts a variable."""
        args = self._parse(line)
        if args.over:
            self._run_batch(args, cell)
            return
        text = self._prompt(cell, raw=args.raw)
        session = self.get_session(args.session)
        key = self.cell_key()
        options = self._options(args)
        if args.new:
            session = self._fresh(session, keep=not args.dry_run)
        try:
            if args.dry_run:
                self._show_dry_run(session, text, key, options)
                return
            exchange = session.exchange(text, key=key, **options)  # validates before anything is sent
        except ValueError as exc:  # ConfigError, schema lookup problems
            raise UsageError(str(exc)) from None
        view = self._view(args.view, exchange.settings, session.name)
        cache = self.reply_cache(args.no_cache)
        self._run(session, text, key, options, view, out=args.out, json_mode=exchange.settings.json_mode, cache=cache)

    def _run(
        self,
        session: Session,
        text: str,
        key: str,
        options: dict[str, Any],
        view: ReplyView,
        *,
        out: str | None,
        json_mode: bool,
        cache: Any = None,
    ) -> None:
        from deepseek_magic.core.errors import DeepSeekError, ReplyError, StreamInterrupted
        from deepseek_magic.core.events import Reply

        try:
            view.start()
            reply = session.ask(
                text,
                key=key,
                on_event=view.on_event,
                on_retry=view.on_retry,
                on_tool=getattr(view, "on_tool_result", None),
                cache=cache,
                **options,
            )
        except KeyboardInterrupt:
            turn = session.turn(key)
            # No turn yet: the interrupt came before any output (or before the request).
            partial = turn.reply if turn is not None and turn.status == "interrupted" else Reply(interrupted=True)
            view.finish(partial, "interrupted")
            self.last_reply = partial
            raise
        except StreamInterrupted as exc:
            partial = exc.partial if exc.partial is not None else Reply(partial=True, error=str(exc))
            view.finish(partial, "partial")
            self.last_reply = partial
            raise
        except ReplyError as exc:
            if exc.reply is not None:
                view.finish(exc.reply, "error")
                self.last_reply = exc.reply
            raise
        except DeepSeekError as exc:
            view.finish(Reply(error=str(exc)), "error")  # the live view must not stay "waiting…"
            raise
        view.finish(reply)
        self.last_reply = reply
        if out:
            self.user_ns[out] = stored_value(reply, json_mode)

    def reply_cache(self, refused: bool = False) -> Any:
        """The shared reply cache, or ``None`` when switched off (config, form or ``--no-cache``)."""
        if refused or not self.settings.cache:
            return None
        from deepseek_magic.client.cache import default_cache

        return default_cache()

    def _run_batch(self, args: Any, template: str) -> None:
        """``--over NAME``: the cell is a per-row template; the result is a DataFrame."""
        from IPython.display import display

        from deepseek_magic.batch import run_batch
        from deepseek_magic.ui.batch_progress import make_progress

        if not template.strip():
            raise UsageError("the cell is empty: write the per-row template below %%deepseek --over")
        if args.over not in self.user_ns:
            raise UsageError(f"--over: there is no {args.over!r} in the namespace")
        if args.dry_run or args.tools or args.prefix is not None:
            raise UsageError("--over cannot be combined with --dry-run, --tools or --prefix")
        options = self._options(args)
        session = self.get_session(args.session)
        try:
            frame = run_batch(
                session,
                self.user_ns[args.over],
                template.strip("\n"),
                concurrency=args.concurrency,
                cache=self.reply_cache(args.no_cache),
                progress=make_progress(self.shell),
                confirm_above=self.batch_confirm_above,
                confirmed=args.confirm,
                namespace=self.user_ns,
                **options,
            )
        except ValueError as exc:  # ConfigError and friends: one line, nothing sent
            raise UsageError(str(exc)) from None
        if args.out:
            self.user_ns[args.out] = frame
        else:
            display(frame)

    def _fresh(self, session: Session, *, keep: bool) -> Session:
        """``--new``: an empty session (for a dry run, a throwaway copy)."""
        if keep:
            session.reset()
            return session
        from deepseek_magic.conversation.session import Session

        return Session(session.name, settings=session.settings, client=session.client)

    def _parse(self, line: str) -> Any:
        if KEY_PATTERN.search(line):
            raise UsageError(
                "API keys are not accepted as options (they would be saved with the notebook); "
                "use %deepseek settings or the DEEPSEEK_API_KEY environment variable"
            )
        from deepseek_magic.ipython.line_words import parser_tokens  # downward, lazy like this module's other imports

        parser = self.deepseek.parser
        tokens = parser_tokens(line)
        seen: set[str] = set()
        actions = parser._option_string_actions
        for token in tokens:
            option = token.split("=", 1)[0]
            if option in actions:
                dest = actions[option].dest
                if dest in seen and dest not in REPEATABLE:
                    raise UsageError(f"option {option} is given more than once")
                seen.add(dest)
        try:
            args = parser.parse_args(tokens)
        except UsageError as exc:
            raise UsageError(_one_line(str(exc))) from None
        if args.out is not None:
            check_out_name(args.out)
        return args

    def _prompt(self, cell: str, *, raw: bool) -> str:
        if not cell.strip():
            raise UsageError("the cell is empty: write the prompt on the lines below %%deepseek")
        if raw:
            return cell.strip("\n")
        from deepseek_magic.features.interpolation import InterpolationError, interpolate

        try:
            return interpolate(cell, self.user_ns, budget=self.interpolation_budget).strip("\n")
        except InterpolationError as exc:
            raise UsageError(str(exc)) from None

    def _options(self, args: Any) -> dict[str, Any]:
        """Session.ask options: the cell's own (the shared Settings, traits included, supply the rest)."""
        options: dict[str, Any] = {}
        for name in ("model", "provider", "effort", "thinking", "temperature", "top_p", "max_tokens", "seed"):
            value = getattr(args, name)
            if value is not None:
                options[name] = value
        if args.stop:
            options["stop"] = [unescape(stop) for stop in args.stop]
        if args.choices is not None:
            options["n"] = args.choices
        if args.logprobs is not None:
            options["logprobs"] = True
            options["top_logprobs"] = args.logprobs
        if args.user_id is not None:
            options["user_id"] = args.user_id
        if args.prefix is not None:
            options["prefix"] = unescape(args.prefix)
        if args.strict:
            options["strict_tools"] = True
        if args.no_stream:
            options["stream"] = False
        if args.async_delivery:
            options["async_delivery"] = True
        if args.system is not None:
            options["system"] = args.system
        if args.json or args.schema:
            options["json"] = True
        if args.tools:
            options["tools"] = self._tools(args.tools)
        if args.schema:
            from deepseek_magic.features.structured import schema_from_namespace

            try:
                options["schema"] = schema_from_namespace(args.schema, self.user_ns)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            except Exception as exc:  # the user's object failed while being looked at: still one line
                raise UsageError(f"--schema {args.schema}: {type(exc).__name__}: {exc}") from None
        return options

    def _tools(self, names: str) -> list[Any]:
        """The callables named in ``--tools f,g``; only these may run."""
        found = []
        for name in (part.strip() for part in names.split(",")):
            if not name:
                continue
            value = self.user_ns.get(name)
            if value is None:
                raise UsageError(f"--tools: there is no {name!r} in the namespace")
            if not callable(value):
                raise UsageError(f"--tools: {name!r} is not a function")
            found.append(value)
        if not found:
            raise UsageError("--tools needs at least one function name")
        return found

    def _view(self, preference: str | None, settings: Settings, session_name: str) -> ReplyView:
        from deepseek_magic.providers import get_provider
        from deepseek_magic.ui.choose import choose_view
        from deepseek_magic.ui.static import ReplyHeader

        header = ReplyHeader(
            provider=get_provider(settings.provider).display_name,
            model=settings.model,
            thinking=settings.thinking,
            effort=settings.effort,
            session=session_name,
        )
        return choose_view(preference or self.view, self.shell, header)

    def _show_dry_run(self, session: Session, text: str, key: str, options: dict[str, Any]) -> None:
        from deepseek_magic.ipython.commands import show_dry_run

        show_dry_run(session, session.dry_run(text, key=key, **options))

    # --------------------------------------------------------------- %deepseek

    @no_var_expand
    @named_line_magic("deepseek")
    def deepseek_line(self, line: str) -> Any:
        """``%deepseek help`` lists the subcommands: settings, chat, history, reset, sessions,
        usage, models, balance, config, save, load."""
        from deepseek_magic.ipython.commands import run_subcommand

        return run_subcommand(self, line)


def check_out_name(name: str) -> None:
    """``--out`` takes a plain variable name: an identifier, not a keyword, a dunder or one of IPython's own."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"--out {name!r}: not a variable name (letters, digits and '_', not a Python keyword)")
    if (name.startswith("__") and name.endswith("__")) or name in IPYTHON_NAMES or _IPYTHON_NUMBERED.match(name):
        raise UsageError(f"--out {name!r}: that name belongs to Python or IPython; choose another")


def unescape(value: str) -> str:
    """``\\n`` and ``\\t`` typed in an option become a newline and a tab (``--stop "\\n\\n"``)."""
    return re.sub(r"\\(n|t|\\)", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], value)


def stored_value(reply: Reply, json_mode: bool) -> Any:
    """What ``--out`` stores: the text, or the parsed data; a list when several choices came back."""
    if len(reply.choices) > 1:
        return [choice.data if json_mode else choice.content for choice in reply.choices]
    return reply.data if json_mode else reply.content


def _one_line(message: str) -> str:
    lines = [part.strip() for part in message.splitlines() if part.strip()]
    return lines[-1] if lines else message


#: The magics loaded into the running shell, if any: ``Session()`` shares their Settings.
LOADED: DeepSeekMagics | None = None


def load(shell: Any) -> DeepSeekMagics:
    """Register the magics on ``shell`` once (loading twice is harmless)."""
    existing = shell.magics_manager.registry.get("DeepSeekMagics")
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    magics = DeepSeekMagics(shell)
    shell.register_magics(magics)
    global LOADED
    LOADED = magics  # Session() in this notebook starts from the Settings the cells use (config.default_settings)
    shell.events.register("pre_run_cell", magics.pre_run_cell)
    shell.events.register("post_run_cell", magics.post_run_cell)
    return magics


def unload(shell: Any) -> None:
    """Undo :func:`load`: remove the magics and event hooks."""
    magics = shell.magics_manager.registry.pop("DeepSeekMagics", None)
    if magics is None:
        return
    global LOADED
    if LOADED is magics:
        LOADED = None
    for event, callback in (("pre_run_cell", magics.pre_run_cell), ("post_run_cell", magics.post_run_cell)):
        with contextlib.suppress(ValueError):
            shell.events.unregister(event, callback)
    shell.magics_manager.magics["cell"].pop("deepseek", None)
    shell.magics_manager.magics["line"].pop("deepseek", None)
    magics.close()
