"""What the emulator answers: auth, routes, reply content, usage, cache, effort, limits, prefix, JSON, tools."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deepseek_magic.emulator import EmulatorConfig


def message_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["choices"][0]["message"]
    return result


def test_auth_missing_and_wrong_keys(wire: Any) -> None:
    missing = wire.http.post("/chat/completions", json=wire.body("x"), headers={"Authorization": ""})
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert "Authentication Fails" in missing.json()["error"]["message"]
    wrong = wire.http.post(
        "/chat/completions", json=wire.body("x"), headers={"Authorization": "Bearer sk-real-looking-key-9f3a"}
    )
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": {
            "message": "Authentication Fails, Your api key: ****9f3a is invalid",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }
    short = wire.http.get("/models", headers={"Authorization": "Bearer abc"})
    assert short.status_code == 401 and "abc" not in short.text


def test_models_and_balance(wire: Any) -> None:
    for path in ("/models", "/v1/models"):
        assert wire.http.get(path).json() == {
            "object": "list",
            "data": [
                {"id": "deepseek-v4-flash", "object": "model", "owned_by": "deepseek"},
                {"id": "deepseek-v4-pro", "object": "model", "owned_by": "deepseek"},
            ],
        }
    balance = wire.http.get("/user/balance").json()
    assert balance["is_available"] is True
    info = balance["balance_infos"][0]
    assert set(info) == {"currency", "total_balance", "granted_balance", "topped_up_balance"}
    assert all(isinstance(info[key], str) for key in info)


def test_unknown_route_is_an_enveloped_404(wire: Any) -> None:
    response = wire.http.get("/nope")
    assert response.status_code == 404 and set(response.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("path", ["/chat/completions", "/v1/chat/completions", "/beta/chat/completions"])
def test_chat_routes(wire: Any, path: str) -> None:
    assert wire.post(wire.body("hi"), path=path).json()["object"] == "chat.completion"


def test_requests_are_recorded_without_authorization(make_wire: Any) -> None:
    wire = make_wire(EmulatorConfig())
    wire.post(wire.body("remember me"), **{"X-Trace": "t1"})
    wire.http.get("/models")
    recorded = wire.emu.requests
    assert [(r.method, r.path) for r in recorded] == [("POST", "/chat/completions"), ("GET", "/models")]
    assert recorded[0].body["messages"][0]["content"] == "remember me"
    assert recorded[0].headers["x-trace"] == "t1"
    assert all("authorization" not in {k.lower() for k in r.headers} for r in recorded)
    assert recorded[1].body is None


def test_reply_refers_to_prompt_model_and_mode(wire: Any) -> None:
    content = message_of(wire.post(wire.body("Summarise the plot of Hamlet", model="deepseek-v4-pro")))["content"]
    assert content.startswith("[emulated]")
    assert "Summarise the plot of Hamlet" in content and "deepseek-v4-pro" in content and "thinking on" in content


def test_multi_turn_reply_mentions_earlier_turn(wire: Any) -> None:
    body = {
        "model": "deepseek-v4-flash",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": "What is my name?"},
        ],
    }
    content = message_of(wire.post(body))["content"]
    assert "turn 2" in content and "My name is Ada." in content and "Be brief." in content


def test_same_request_same_reply_stream_or_not(wire: Any) -> None:
    body = wire.body("Determinism check", seed=7)
    first, second = message_of(wire.post(body)), message_of(wire.post(body))
    assert first == second
    streamed = wire.stream(body).chunks
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in streamed)
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in streamed)
    assert (text, reasoning) == (first["content"], first["reasoning_content"])
    replies = {message_of(wire.post(wire.body("Determinism check", seed=s)))["reasoning_content"] for s in range(8)}
    assert len(replies) > 1


def test_legacy_model_names(wire: Any) -> None:
    chat = wire.post(wire.body("hi", model="deepseek-chat")).json()
    assert chat["model"] == "deepseek-v4-flash" and "reasoning_content" not in chat["choices"][0]["message"]
    reasoner = wire.post(wire.body("hi", model="deepseek-reasoner")).json()
    assert reasoner["model"] == "deepseek-v4-flash" and reasoner["choices"][0]["message"]["reasoning_content"]
    assert wire.post(wire.body("hi", model="deepseek-flash")).json()["model"] == "deepseek-flash"


def test_usage_is_consistent_with_chunks(wire: Any) -> None:
    chunks = wire.stream(wire.body("Count my tokens", stream_options={"include_usage": True})).chunks
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-1]]
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == len(deltas)
    assert usage["completion_tokens_details"]["reasoning_tokens"] == sum(1 for d in deltas if d["reasoning_content"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] == usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == usage["prompt_cache_hit_tokens"]
    assert all(c["usage"] is None for c in chunks[:-1])


def test_repeated_prompt_reports_block_sized_cache_hits(wire: Any) -> None:
    long_prompt = " ".join(f"word{i}" for i in range(400))
    first = wire.post(wire.body(long_prompt)).json()["usage"]
    second = wire.post(wire.body(long_prompt)).json()["usage"]
    assert first["prompt_cache_hit_tokens"] == 0
    hit = second["prompt_cache_hit_tokens"]
    assert hit > 0 and hit % 64 == 0 and hit == (second["prompt_tokens"] - 1) // 64 * 64
    assert second["prompt_tokens_details"]["cached_tokens"] == hit
    # A longer conversation starting with the same prompt reuses the cached prefix.
    longer = {
        "model": "deepseek-v4-flash",
        "messages": [
            {"role": "user", "content": long_prompt},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "more"},
        ],
    }
    assert wire.post(longer).json()["usage"]["prompt_cache_hit_tokens"] >= 320
    # Another user_id has its own cache.
    assert wire.post(wire.body(long_prompt, user_id="someone-else")).json()["usage"]["prompt_cache_hit_tokens"] == 0


def test_effort_orders_reasoning_tokens(wire: Any) -> None:
    def reasoning_tokens(**fields: Any) -> int:
        usage = wire.post(wire.body("Plan a trip to Rome", **fields)).json()["usage"]
        return int(usage["completion_tokens_details"]["reasoning_tokens"])

    low, high, top = (reasoning_tokens(reasoning_effort=e) for e in ("low", "high", "max"))
    assert low < high < top
    # The default is high and medium maps to high (phrasing may differ by a token or two).
    assert low < reasoning_tokens() < top and low < reasoning_tokens(reasoning_effort="medium") < top
    assert reasoning_tokens(thinking={"type": "enabled", "reasoning_effort": "max"}) > high


def test_max_tokens_while_reasoning_gives_empty_content(wire: Any) -> None:
    body = wire.body("Think hard", max_tokens=3)
    reply = wire.post(body).json()
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["choices"][0]["message"]["content"] == ""
    assert reply["usage"]["completion_tokens"] == reply["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3
    chunks = wire.stream(body).chunks
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {"content": "", "reasoning_content": None},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert len(chunks) == 5


def test_max_tokens_cuts_content_without_thinking(wire: Any) -> None:
    reply = wire.post(wire.body("Write a poem", max_tokens=5, thinking={"type": "disabled"})).json()
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 5 and reply["choices"][0]["message"]["content"]


def test_stop_sequence_cuts_before_the_stop_string(wire: Any) -> None:
    full = message_of(wire.post(wire.body("Stop test", thinking={"type": "disabled"})))["content"]
    assert "Key terms" in full
    reply = wire.post(wire.body("Stop test", thinking={"type": "disabled"}, stop=["Key terms", "zzz"])).json()
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert reply["choices"][0]["message"]["content"] == full[: full.index("Key terms")]


def test_prefix_completion_on_beta(wire: Any) -> None:
    body: dict[str, Any] = {
        "model": "deepseek-v4-flash",
        "messages": [
            {"role": "user", "content": "Write quick sort in Python"},
            {"role": "assistant", "content": "```python\n", "prefix": True},
        ],
        "stop": ["```"],
        "thinking": {"type": "disabled"},
    }
    content = message_of(wire.post(body, path="/beta/chat/completions"))["content"]
    assert not content.startswith("```") and "[emulated]" in content and "```" not in content
    text_prefix = {
        **body,
        "messages": [body["messages"][0], {"role": "assistant", "content": "Once upon", "prefix": True}],
    }
    continued = message_of(wire.post(text_prefix, path="/beta/chat/completions"))["content"]
    assert not continued.startswith("Once upon") and continued.startswith(" ")
    assert wire.post(body).status_code == 400


def test_json_mode_follows_the_prompt(wire: Any) -> None:
    def data(prompt: str) -> Any:
        return json.loads(message_of(wire.post(wire.body(prompt, response_format={"type": "json_object"})))["content"])

    keyed = data("Return JSON with keys name, dtype, note for the column 'price'.")
    assert set(keyed) == {"name", "dtype", "note"}
    listed = data("Give me a json list of cities:\n- Paris\n- Lima\n- Oslo")
    assert [row["name"] for row in listed["cities"]] == ["Paris", "Lima", "Oslo"]
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "year": {"type": "integer", "minimum": 1900},
            "genres": {"type": "array", "items": {"type": "string"}},
            "rating": {"type": "string", "enum": ["good", "bad"]},
        },
        "required": ["title", "year", "genres", "rating"],
    }
    shaped = data(f"Describe a bad film as JSON matching this schema: {json.dumps(schema)}")
    assert set(shaped) == {"title", "year", "genres", "rating"}
    assert isinstance(shaped["year"], int) and shaped["year"] >= 1900 and shaped["rating"] == "bad"
    assert all(isinstance(g, str) for g in shaped["genres"])
    example = data('Reply in json like {"city": "X", "population": 1, "capital": true} for Lima.')
    assert set(example) == {"city", "population", "capital"} and isinstance(example["capital"], bool)
    fallback = data("Anything at all, as json")
    assert fallback["emulated"] is True


def test_tool_arguments_follow_the_schema(wire: Any) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "book_flight",
            "parameters": {
                "type": "object",
                "properties": {
                    "destination": {"type": "string"},
                    "passengers": {"type": "integer", "minimum": 1, "maximum": 9},
                    "cabin": {"type": "string", "enum": ["economy", "business"]},
                    "flexible": {"type": "boolean"},
                    "notes": {"type": "string"},
                },
                "required": ["destination", "passengers", "cabin", "flexible"],
            },
        },
    }
    other = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    reply = wire.post(
        wire.body(
            "Please book_flight to Buenos Aires for 3 passengers in business, then get_time.", tools=[tool, other]
        )
    ).json()
    calls = reply["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["book_flight", "get_time"]
    assert [c["index"] for c in calls] == [0, 1]
    assert [c["id"][:8] for c in calls] == ["call_00_", "call_01_"]
    args = json.loads(calls[0]["function"]["arguments"])
    assert args == {"destination": "Buenos Aires", "passengers": 3, "cabin": "business", "flexible": True}
    assert json.loads(calls[1]["function"]["arguments"]) == {}


def test_no_tool_call_when_no_tool_is_named_or_choice_is_none(wire: Any) -> None:
    tool = {"type": "function", "function": {"name": "lookup"}}
    plain = wire.post(wire.body("Just chat with me", tools=[tool])).json()
    assert plain["choices"][0]["finish_reason"] == "stop" and "`lookup`" in plain["choices"][0]["message"]["content"]
    none = wire.post(wire.body("use lookup", tools=[tool], tool_choice="none")).json()
    assert none["choices"][0]["finish_reason"] == "stop"


def test_logprobs_and_n(wire: Any) -> None:
    reply = wire.post(wire.body("hi", logprobs=True, top_logprobs=2, n=2, thinking={"type": "disabled"})).json()
    assert [c["index"] for c in reply["choices"]] == [0, 1]
    entries = reply["choices"][0]["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == reply["choices"][0]["message"]["content"]
    assert all(len(e["top_logprobs"]) == 2 and e["logprob"] <= 0 for e in entries)
    chunks = wire.stream(wire.body("hi", n=2, thinking={"type": "disabled"})).chunks
    finals = [c for c in chunks if c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["index"] for c in finals] == [0, 1] and "usage" in finals[-1]


def test_json_mode_after_tool_results_is_json(wire: Any) -> None:
    body = {
        "model": "deepseek-v4-flash",
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "lookup"}}],
        "messages": [
            {"role": "user", "content": "use lookup, answer in json"},
            {
                "role": "assistant",
                "content": "",
                "reasoning_content": "r",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"x": 1}'},
        ],
    }
    data = json.loads(message_of(wire.post(body))["content"])
    assert data["tool_results"] == [{"name": "lookup", "content": {"x": 1}}]


def test_any_key_accepted_when_api_key_is_none(make_wire: Any) -> None:
    wire = make_wire(EmulatorConfig(api_key=None))
    assert wire.http.post("/chat/completions", json=wire.body("x"), headers={"Authorization": ""}).status_code == 200
