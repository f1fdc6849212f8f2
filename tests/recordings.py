"""Loading the real DeepSeek recordings vendored in tests/fixtures/deepseek-real/ (see its SOURCES.md).

Also a deliberately plain reference reader: it states what a recording
"holds" (text joined, usage from the chunk that carries it, last finish
reason) without any of the library's code, so tests compare two independent
readings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REAL_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepseek-real"


def chunk_files() -> list[Path]:
    return sorted(REAL_FIXTURES.glob("*.chunks.txt"))


def body_files() -> list[Path]:
    return sorted(REAL_FIXTURES.glob("*.json"))


def cassette_files() -> list[Path]:
    return sorted((REAL_FIXTURES / "pydantic-ai").glob("*.yaml"))


def chunks(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def as_sse(path: Path, *, crlf: bool = False, keepalives: bool = False) -> bytes:
    """A chunk file framed as the wire stream DeepSeek sends."""
    eol = "\r\n" if crlf else "\n"
    parts = []
    if keepalives:
        parts.append(f": keep-alive{eol}{eol}")
    for line in path.read_text(encoding="utf-8").splitlines():
        parts.append(f"data: {line}{eol}{eol}")
        if keepalives:
            parts.append(f": keep-alive{eol}")
    parts.append(f"data: [DONE]{eol}{eol}")
    return "".join(parts).encode("utf-8")


@dataclass
class Expected:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)  # (id, name, arguments)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    id: str | None = None
    model: str | None = None


def expected_from_chunks(items: list[dict[str, Any]]) -> Expected:
    exp = Expected(id=items[0].get("id"), model=items[0].get("model"))
    calls: dict[int, list[str]] = {}
    for item in items:
        for choice in item.get("choices", []):
            delta = choice.get("delta", {})
            exp.content += delta.get("content") or ""
            exp.reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], ["", "", ""])
                slot[0] = slot[0] or call.get("id", "")
                slot[1] = slot[1] or call.get("function", {}).get("name", "")
                slot[2] += call.get("function", {}).get("arguments", "")
            if choice.get("finish_reason"):
                exp.finish_reason = choice["finish_reason"]
        if item.get("usage"):
            exp.usage = item["usage"]
    exp.tool_calls = [tuple(calls[i]) for i in sorted(calls)]  # type: ignore[misc]
    return exp


def expected_from_body(body: dict[str, Any]) -> Expected:
    message = body["choices"][0]["message"]
    return Expected(
        content=message.get("content") or "",
        reasoning=message.get("reasoning_content") or "",
        tool_calls=[
            (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or []
        ],
        usage=body.get("usage"),
        finish_reason=body["choices"][0].get("finish_reason"),
        id=body.get("id"),
        model=body.get("model"),
    )


def cassette_interactions(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"])


def response_body(interaction: dict[str, Any]) -> tuple[str, Any]:
    """("json", dict) or ("text", raw SSE text) for one cassette response."""
    response = interaction["response"]
    if "parsed_body" in response:
        return "json", response["parsed_body"]
    body = response["body"]
    return body["type"], body["content"]


def request_body(interaction: dict[str, Any]) -> Any:
    request = interaction["request"]
    if "parsed_body" in request:
        return request["parsed_body"]
    return request["body"]["content"]
