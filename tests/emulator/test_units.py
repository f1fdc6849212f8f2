"""Pure pieces: tokenizer, fault grammar, wire plans, schema filling."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepseek_magic.emulator.config import EmulatorConfig
from deepseek_magic.emulator.errors import mask_key
from deepseek_magic.emulator.faults import Fault, parse_fault
from deepseek_magic.emulator.schema import Hints, instance
from deepseek_magic.emulator.tokens import tokenize
from deepseek_magic.emulator.wire import DONE, KEEPALIVE, Abort, Pace, Wait, Write, stream_plan


@given(st.text())
def test_tokens_join_back_to_the_text(text: str) -> None:
    pieces = tokenize(text)
    assert "".join(pieces) == text
    assert all(pieces)


def test_fault_grammar() -> None:
    assert parse_fault("") == Fault() == parse_fault(None) == parse_fault("none")
    fault = parse_fault(" status=503 , retry_after=2.0, drop_after=4,stall=120,stall_after=2,trickle=99,keepalive=3")
    assert fault.status == 503 and fault.retry_after == "2" and fault.drop_after == 4
    assert fault.stall == 60 and fault.stall_after == 2 and fault.trickle == 10 and fault.keepalive == 3
    assert parse_fault("malformed_after=0").malformed_after == 0


def test_masking_never_shows_a_short_key() -> None:
    assert mask_key("sk-abcdefgh1234") == "****1234"
    assert mask_key("short") == "****"


def test_stream_plan_orders_keepalives_pacing_and_faults() -> None:
    chunks: list[dict[str, Any]] = [{"n": i} for i in range(3)]
    config = EmulatorConfig(ttft=1.0, tps=10, keepalive_interval=0.25)
    plan = stream_plan(chunks, config, parse_fault("keepalive=2"))
    assert plan[0] == Write(KEEPALIVE * 2)
    assert plan[1] == Wait(1.0, KEEPALIVE, 0.25)
    gaps = [a for a in plan if isinstance(a, Pace)]
    assert [gap.seconds for gap in gaps] == [0.1, 0.1]  # none before the first chunk
    config.tps = 40  # the pace is read when each gap starts: a reply can speed up midway
    assert [gap.seconds for gap in gaps] == [0.025, 0.025]
    config.tps = 0
    assert [gap.seconds for gap in gaps] == [0.0, 0.0]
    trickled = stream_plan(chunks, EmulatorConfig(tps=10), parse_fault("trickle=0.5"))
    assert [a for a in trickled if isinstance(a, Wait | Pace)] == [Wait(0.5), Wait(0.5)]
    assert plan[-1] == Write(DONE)
    dropped = stream_plan(chunks, EmulatorConfig(), parse_fault("drop_after=2"))
    assert len([a for a in dropped if isinstance(a, Write)]) == 2 and isinstance(dropped[-1], Abort)


def test_schema_instance_respects_types_refs_and_bounds() -> None:
    schema = {
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"]}},
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"$ref": "#/$defs/Unit"},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "ratio": {"type": ["number", "null"], "exclusiveMaximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "when": {"type": "string", "format": "date"},
            "choice": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
            "optional": {"type": "string"},
        },
        "required": ["city", "unit", "days", "ratio", "tags", "when", "choice"],
    }
    value = instance(schema, Hints("Forecast for Lisbon over 30 days in f please"))
    assert value["city"] == "Lisbon" and value["unit"] == "f" and value["days"] == 7
    assert value["ratio"] < 1 and len(value["tags"]) >= 2 and value["when"] == "2024-01-01"
    assert isinstance(value["choice"], bool) and "optional" not in value
    assert instance({"$ref": "#/nowhere"}, Hints("x")) is not None
    recursive = {"type": "object", "properties": {"child": {"$ref": "#"}}, "required": ["child"]}
    assert isinstance(instance(recursive, Hints("x")), dict)


def test_config_rejects_nonsense() -> None:
    for bad in ({"tps": -1}, {"ttft": -0.1}, {"keepalive_interval": 0}, {"max_body_bytes": 0}):
        with pytest.raises(ValueError):
            EmulatorConfig(**bad)
