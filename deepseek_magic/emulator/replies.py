"""Compose the emulated reply: reasoning, answer text and tool calls.

Replies are deterministic for a request (the caller seeds ``rng`` from a hash of
the body), plainly marked ``[emulated]``, and refer to the prompt, the model and
the thinking mode so demos and tests can see which request produced them.
Reasoning grows with ``reasoning_effort``: each effort level uses a longer
prefix of the same list of steps, so low < high < max holds by construction.
"""

from __future__ import annotations

import json
import random
import re
import string
from dataclasses import dataclass
from typing import Any

from deepseek_magic.emulator.jsonmode import json_content
from deepseek_magic.emulator.prompt import (
    Conversation,
    blockquote,
    is_question,
    key_terms,
    one_line,
    read_conversation,
    words,
)
from deepseek_magic.emulator.request import ChatRequest
from deepseek_magic.emulator.schema import Hints, instance

_STEPS_BY_EFFORT = {"low": 1, "high": 4, "max": 12}
_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class PlannedCall:
    """A tool call the reply makes."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """Full texts of one choice, before max_tokens and stop sequences apply."""

    reasoning: str
    content: str
    tool_calls: tuple[PlannedCall, ...] = ()


def compose(request: ChatRequest, rng: random.Random) -> Reply:
    """The reply ``request`` gets; ``rng`` picks among phrasings."""
    conversation = read_conversation(request.messages, prefix=request.prefix)
    calls = plan_tool_calls(request, conversation, rng)
    if calls:
        content = ""
    elif conversation.tool_results and request.json_mode:
        results = [{"name": r.name, "content": _maybe_json(r.content)} for r in conversation.tool_results]
        content = json.dumps({"emulated": True, "tool_results": results}, ensure_ascii=False)
    elif conversation.tool_results:
        content = _tool_answer(request, conversation)
    elif conversation.prefix is not None:
        content = _continuation(conversation)
    elif request.json_mode:
        content = json_content(conversation, model=request.model, thinking=request.thinking)
    else:
        content = _answer(request, conversation, rng)
    reasoning = _reasoning(request, conversation, calls, rng) if request.thinking else ""
    return Reply(reasoning=reasoning, content=content, tool_calls=calls)


def _mode(request: ChatRequest) -> str:
    return f"thinking on, effort {request.effort}" if request.thinking else "thinking off"


def plan_tool_calls(request: ChatRequest, conversation: Conversation, rng: random.Random) -> tuple[PlannedCall, ...]:
    """Tool calls for this turn: forced ones, or the tools the last user message names."""
    if not request.tools or request.tool_choice == "none" or request.prefix:
        return ()
    after_tools = request.messages[-1].get("role") == "tool"
    if after_tools and request.forced_tool is not None:
        return ()
    text = conversation.last_user
    names = request.tool_names
    if request.forced_tool is not None:
        chosen = [request.forced_tool]
    else:
        positions = {name: _mention(text, name) for name in names}
        called = _called_since_user(request.messages)
        chosen = sorted((n for n in names if positions[n] >= 0 and n not in called), key=lambda n: positions[n])
        if not chosen and request.tool_choice == "required" and not after_tools:
            chosen = names[:1]
        if re.search(r"(?i)\band then\b|\bafter that\b|\bone at a time\b", text):
            chosen = chosen[:1]  # "call a and then b": one tool per round, in the order named
    if after_tools and not chosen:
        return ()
    schemas = {str(t["function"]["name"]): t["function"].get("parameters") for t in request.tools}
    hints = Hints(text, exclude=tuple(names))
    calls = []
    for index, name in enumerate(chosen[:8]):
        schema = schemas.get(name) or {"type": "object", "properties": {}}
        arguments = instance(schema, hints, root=schema)
        call_id = f"call_{index:02d}_" + "".join(rng.choice(_ID_ALPHABET) for _ in range(24))
        calls.append(PlannedCall(call_id, name, json.dumps(arguments, ensure_ascii=False)))
    return tuple(calls)


def _called_since_user(messages: list[dict[str, Any]]) -> set[str]:
    """Names of the tools already called after the last user message."""
    called: set[str] = set()
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict):
                called.add(str((call.get("function") or {}).get("name", "")))
    return called


def _mention(text: str, name: str) -> int:
    match = re.search(rf"(?i)(?<![\w-]){re.escape(name)}(?![\w-])", text)
    return match.start() if match else -1


def _answer(request: ChatRequest, conversation: Conversation, rng: random.Random) -> str:
    user = conversation.last_user
    opening = rng.choice(
        (
            "Reply from the local DeepSeek emulator",
            "The local DeepSeek emulator answering",
            "Emulated answer, generated locally",
        )
    )
    count = len(words(user))
    kind = "a question" if is_question(user) else "a request"
    lines = [
        f"[emulated] {opening}: **{request.model}**, {_mode(request)}.",
        "",
        "You wrote:",
        "",
        blockquote(user) if user.strip() else "> (no user message)",
        "",
        f"That reads as {kind} of {_plural(count, 'word')}. "
        + rng.choice(
            (
                "A real model would answer it here; the emulator mirrors it back instead,",
                "DeepSeek would answer it in full; this stand-in only echoes its shape,",
                "No model was called to answer it; this reply is a local stand-in,",
            )
        )
        + " so streaming, sessions and rendering can be tried without an API key.",
        "",
    ]
    terms = key_terms(user)
    if terms:
        lines.append("- **Key terms:** " + ", ".join(f"`{term}`" for term in terms))
    system = f"; system prompt: “{one_line(conversation.system, 60)}”" if conversation.system.strip() else ""
    count = conversation.message_count
    lines.append(f"- **Conversation:** turn {conversation.user_turns}, {_plural(count, 'message')}{system}")
    if conversation.previous_user:
        lines.append(f"- **Earlier you said:** “{one_line(conversation.previous_user, 80)}”")
    if request.tools:
        offered = ", ".join(f"`{name}`" for name in request.tool_names[:8])
        lines.append(f"- **Tools offered:** {offered} (name one in your message to get a tool call)")
    lines += ["", "_The same request always gets this same emulated text._"]
    return "\n".join(lines)


def _maybe_json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _tool_answer(request: ChatRequest, conversation: Conversation) -> str:
    lines = [f"[emulated] **{request.model}** ({_mode(request)}) read the tool results:", ""]
    for result in conversation.tool_results:
        lines.append(f"- `{result.name}` returned `{one_line(result.content, 120)}`")
    first = conversation.tool_results[0]
    question = one_line(conversation.last_user, 100) or "your request"
    lines += [
        "",
        f"So, for “{question}”: according to `{first.name}`, the answer is {one_line(first.content, 160)}.",
    ]
    return "\n".join(lines)


def _continuation(conversation: Conversation) -> str:
    prefix = conversation.prefix or ""
    topic = one_line(conversation.last_user, 60) or "your prefix"
    fence = re.search(r"```[\w+#.-]*\s*$", prefix)
    if fence:
        lead = "" if prefix.endswith("\n") else "\n"
        return f'{lead}# [emulated] continuation for: {topic}\nprint("hello from the DeepSeek emulator")\n```\n'
    lead = "" if not prefix or prefix[-1].isspace() else " "
    terms = ", ".join(key_terms(conversation.last_user, 3)) or "the request"
    return f"{lead}… [emulated] continuing your prefix, about {terms}."


def _reasoning(
    request: ChatRequest, conversation: Conversation, calls: tuple[PlannedCall, ...], rng: random.Random
) -> str:
    user = conversation.last_user
    if calls:
        names = ", ".join(f"`{call.name}`" for call in calls)
        opening = f"The user mentions {names}, so I should call {'that tool' if len(calls) == 1 else 'those tools'}."
    elif conversation.tool_results:
        names = ", ".join(sorted({f"`{r.name}`" for r in conversation.tool_results}))
        opening = f"The tool results are back from {names}. I need to turn them into an answer."
    elif conversation.prefix is not None:
        opening = "I need to continue the assistant's prefix without repeating it."
    elif request.json_mode:
        opening = "The user wants the answer as a JSON object."
    else:
        verb = rng.choice(("asks", "writes", "says"))
        opening = f'The user {verb}: "{one_line(user, 60)}".'
    steps = _steps(request, conversation, rng)
    count = _STEPS_BY_EFFORT.get(request.effort, 4)
    sentences = [opening, *steps[:count]]
    sentences += [f"Arguments for `{call.name}`: {call.arguments}." for call in calls]
    sentences.append(rng.choice(("OK, answering now.", "Let me write the answer.", "Time to respond.")))
    return " ".join(sentences)


def _steps(request: ChatRequest, conversation: Conversation, rng: random.Random) -> list[str]:
    terms = key_terms(conversation.last_user)
    system = one_line(conversation.system, 60)
    return [
        f"Key terms: {', '.join(terms)}." if terms else "The message has no obvious key terms.",
        f"This is turn {conversation.user_turns} of the conversation, "
        f"{_plural(conversation.message_count, 'message')} so far.",
        f'There is a system prompt to respect: "{system}".' if system else "No system prompt, so defaults apply.",
        "It reads as a question, so the answer should come first."
        if is_question(conversation.last_user)
        else "It reads as an instruction, so I should follow it directly.",
        f"I am running as {request.model} with effort {request.effort}.",
        "Since this is an emulator, I must not invent facts; mirroring the request is the honest reply.",
        rng.choice(("Markdown will render well in a notebook.", "A short quote and a list will read well.")),
        "Wait, let me double-check that nothing in the message was missed.",
        "The reply must be deterministic: the same request gives the same text.",
        "Let me re-read the message once more before answering.",
        "Also, keep it short enough to read at a glance.",
        "Tools offered: " + ", ".join(request.tool_names) + "." if request.tools else "No tools are involved.",
    ]
