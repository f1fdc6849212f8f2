"""The emulator's HTTP application (Starlette): routes, auth, recording, faults.

Order of checks on a chat request mirrors the real service as far as it is
known: body size, authentication, concurrency, then (for the emulator) a
forced fault status, then body validation, then the reply.  Every error is
DeepSeek-shaped; an unexpected exception still answers a DeepSeek-shaped 500
rather than a bare traceback.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from deepseek_magic.emulator.bodies import read_capped
from deepseek_magic.emulator.chunks import Meta, completion_body, stream_chunks
from deepseek_magic.emulator.config import EmulatorConfig, Scripted
from deepseek_magic.emulator.errors import ApiError, auth_error, concurrency_error, envelope
from deepseek_magic.emulator.faults import NO_FAULT, Fault, fault_error, parse_fault
from deepseek_magic.emulator.flavours import DEEPSEEK, Flavour, flavour_for, reseller_paths
from deepseek_magic.emulator.generation import Choice, realise
from deepseek_magic.emulator.oddities import EmulatorApp, odd_answer
from deepseek_magic.emulator.replies import Reply as ComposedReply
from deepseek_magic.emulator.replies import compose
from deepseek_magic.emulator.request import ChatRequest, parse_body, parse_chat_request
from deepseek_magic.emulator.responses import PlannedResponse, install_log_filter
from deepseek_magic.emulator.runware import runware_routes
from deepseek_magic.emulator.usage import PromptCache, prompt_tokens, usage_object
from deepseek_magic.emulator.wire import Write, body_plan, is_simple, stream_plan

FAULT_HEADER = "x-emulator-fault"
MODELS_LISTED = ("deepseek-v4-flash", "deepseek-v4-pro")
#: Body fields that change how a reply is delivered or cut, not what the model would say.
_TRANSPORT_FIELDS = ("stream", "stream_options", "stop", "max_tokens", "logprobs", "top_logprobs")


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the emulator received it; ``Authorization`` is never kept."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class EmulatorState:
    """Mutable server state shared by the handlers (one per app)."""

    config: EmulatorConfig
    requests: list[RecordedRequest] = field(default_factory=list)
    cache: PromptCache = field(default_factory=PromptCache)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Set when the server shuts down: open responses abort instead of running on.
    closing: threading.Event = field(default_factory=threading.Event)

    def record(self, request: Request, body: Any) -> None:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        with self.lock:
            self.requests.append(RecordedRequest(request.method, request.url.path, headers, body))

    def next_fault(self, header: str | None) -> str | None:
        """Consume one scripted fault (one per chat request); the header wins."""
        with self.lock:
            scripted = self.config.faults.pop(0) if self.config.faults else None
        return header if header is not None else scripted

    def next_script(self) -> Scripted | None:
        """Consume one scripted reply, if any (one per chat request)."""
        with self.lock:
            return self.config.scripted.pop(0) if self.config.scripted else None


class InFlight:
    """Counts chat requests from arrival until their response has been sent."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        counted = scope["type"] == "http" and str(scope.get("path", "")).endswith("/chat/completions")
        if counted:
            self.state.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            if counted:
                self.state.in_flight -= 1


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """A new emulator app; its state is at ``app.state.emulator``."""
    state = EmulatorState(config if config is not None else EmulatorConfig())
    install_log_filter()

    async def chat(request: Request) -> Response:
        return await _chat(state, request)

    async def models(request: Request) -> Response:
        state.record(request, None)
        _check_auth(state.config, request)
        return _json({"object": "list", "data": [_model(name) for name in MODELS_LISTED]})

    async def balance(request: Request) -> Response:
        state.record(request, None)
        _check_auth(state.config, request)
        info = {"currency": "USD", "total_balance": "100.00", "granted_balance": "0.00", "topped_up_balance": "100.00"}
        return _json({"is_available": True, "balance_infos": [info]})

    routes = [Route(path, chat, methods=["POST"]) for path in _prefixed("/chat/completions")]
    routes += [Route(path, chat, methods=["POST"]) for path in reseller_paths("/chat/completions")]
    routes += [Route(path, models, methods=["GET"]) for path in ("/models", "/v1/models", *reseller_paths("/models"))]
    routes.append(Route("/user/balance", balance, methods=["GET"]))
    routes += runware_routes(state)  # Runware's task API at POST /v1
    app = EmulatorApp(
        routes=routes,
        middleware=[Middleware(InFlight, state=state)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _crash},
    )
    app.state.emulator = state
    return app


def _prefixed(path: str) -> list[str]:
    return [path, "/v1" + path, "/beta" + path]


def _model(name: str) -> dict[str, str]:
    return {"id": name, "object": "model", "owned_by": "deepseek"}


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    all_headers = {"x-ds-trace-id": uuid.uuid4().hex, **(headers or {})}
    return JSONResponse(payload, status_code=status, headers=all_headers)


def _error_response(error: ApiError) -> Response:
    return _json(error.body(), error.status, error.headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _json(envelope(str(exc.detail)), exc.status_code)


async def _crash(request: Request, exc: Exception) -> Response:
    return _json(envelope("Server Error (emulator bug)", "server_error", "server_error"), 500)


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


def _check_auth(config: EmulatorConfig, request: Request) -> None:
    if config.api_key is None:
        return
    key = _presented_key(request)
    if key != config.api_key:
        raise auth_error(key)


async def _read_body(request: Request, cap: int) -> bytes:
    return await read_capped(request, cap, ApiError(413, f"Request body too large: the limit is {cap} bytes"))


async def _chat(state: EmulatorState, request: Request) -> Response:
    config = state.config
    try:
        raw = await _read_body(request, config.max_body_bytes)
    except ApiError as error:
        state.record(request, None)
        return _error_response(error)
    try:
        body: Any = parse_body(raw)
        syntax_error: ApiError | None = None
    except ApiError as error:
        body, syntax_error = None, error
    state.record(request, body)
    spec = state.next_fault(request.headers.get(FAULT_HEADER))
    try:
        fault = parse_fault(spec)
    except ValueError as exc:
        return _json(envelope(f"Invalid X-Emulator-Fault spec: {exc}", "emulator_error"), 400)
    try:
        _check_auth(config, request)
        if config.max_concurrency is not None and state.in_flight > config.max_concurrency:
            raise concurrency_error(state.in_flight, config.max_concurrency)
        odd = odd_answer(fault, closing=state.closing, deadline=config.max_response_seconds)
        if odd is not None:
            return odd
        forced = fault_error(fault, _presented_key(request), state.in_flight)
        if forced is not None:
            raise forced
        if syntax_error is not None:
            raise syntax_error
        chat_request = parse_chat_request(body, beta=request.url.path.startswith("/beta/"))
        flavour = flavour_for(request.url.path)
        script = state.next_script()
        if script is not None and script.error is not None:
            raise ApiError(script.status, script.error)
        # Composing and counting a multi-megabyte prompt takes a while: keep it off the event loop
        # so other streams keep flowing.
        return await anyio.to_thread.run_sync(_reply, state, chat_request, fault, flavour, script)
    except ApiError as error:
        if fault.retry_after is not None:
            error.headers.setdefault("Retry-After", fault.retry_after)
        return _error_response(error)


def _reply(
    state: EmulatorState,
    chat_request: ChatRequest,
    fault: Fault = NO_FAULT,
    flavour: Flavour = DEEPSEEK,
    script: Scripted | None = None,
) -> Response:
    config = state.config
    seed = _seed(chat_request.body)
    choices = [
        realise(
            _composed(chat_request, random.Random(seed + index), script),
            index=index,
            max_tokens=chat_request.max_tokens,
            stop=chat_request.stop,
        )
        for index in range(chat_request.n)
    ]
    tokens = prompt_tokens(chat_request)
    namespace = f"{chat_request.model}|{chat_request.user_id or ''}"
    hit = state.cache.hit_tokens(namespace, tokens)
    usage = usage_object(
        prompt=len(tokens),
        hit=hit,
        completion=sum(c.completion_tokens for c in choices),
        reasoning=sum(c.reasoning_tokens for c in choices),
        thinking=chat_request.thinking,
    )
    stops = {c.index: _matched_stop(chat_request, c, seed) for c in choices} if flavour.matched_stop else {}
    meta = Meta(
        id=str(uuid.uuid4()),
        created=int(time.time()),
        model=chat_request.model,
        thinking=chat_request.thinking,
        include_usage=chat_request.include_usage,
        logprobs=chat_request.logprobs,
        top_logprobs=chat_request.top_logprobs,
    )
    headers = {"x-ds-trace-id": uuid.uuid4().hex, "x-emulator": "deepseek-magic"}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    if chat_request.stream:
        chunks = [flavour.chunk(chunk, stops) for chunk in stream_chunks(meta, choices, usage)]
        plan = stream_plan(chunks, config, fault)
        headers["cache-control"] = "no-cache"
        media = "text/event-stream; charset=utf-8"
    else:
        whole = flavour.chunk(completion_body(meta, choices, usage), stops)
        if fault.done_only or fault.usage_only:  # nothing generated: no choices (and, done_only, no usage either)
            whole = {**whole, "choices": []}
            if fault.done_only:
                whole.pop("usage", None)
        body = json.dumps(whole, ensure_ascii=False).encode()
        plan = body_plan(body, usage["completion_tokens"], config, fault)
        media = "application/json"
        if is_simple(plan):
            write = plan[0]
            assert isinstance(write, Write)
            return Response(write.data, headers=headers, media_type=media)  # the planned bytes: a fault may alter them
    return PlannedResponse(
        plan, headers=headers, media_type=media, deadline=config.max_response_seconds, closing=state.closing
    )


def _composed(chat_request: ChatRequest, rng: random.Random, script: Scripted | None) -> ComposedReply:
    if script is None:
        return compose(chat_request, rng)
    return ComposedReply(reasoning=script.reasoning if chat_request.thinking else "", content=script.content)


def _matched_stop(chat_request: ChatRequest, choice: Choice, seed: int) -> str | None:
    """The stop sequence that ended ``choice``, if one did (Anyfast reports it)."""
    if choice.finish_reason != "stop" or not chat_request.stop:
        return None
    whole = compose(chat_request, random.Random(seed + choice.index)).content
    rest = whole[len(choice.content) :]
    return next((stop for stop in chat_request.stop if rest.startswith(stop)), None)


def _seed(body: dict[str, Any]) -> int:
    """Seed for a request: same content (incl. ``seed``) -> same reply, streamed or not.

    Truncation fields are left out so a reply cut by ``max_tokens`` or ``stop`` is a
    prefix of the uncut one, as with a real model and a fixed seed.
    """
    content = {k: v for k, v in body.items() if k not in _TRANSPORT_FIELDS}
    try:
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
    except (RecursionError, TypeError, ValueError):
        canonical = repr(sorted(content))
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
