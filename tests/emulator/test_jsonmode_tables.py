"""JSON mode on a prompt holding an interpolated DataFrame: one record per real column."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from deepseek_magic.emulator import RunningEmulator
from deepseek_magic.emulator.jsonmode import list_key
from deepseek_magic.emulator.prompt import table_columns
from deepseek_magic.features.interpolation import interpolate


def test_columns_are_read_from_the_interpolated_summary() -> None:
    frame = pd.DataFrame({"city": ["Lyon"], "population": [522_000], "coastal": [False]})
    prompt = interpolate("Describe {df}", {"df": frame})
    text_dtype = str(frame.dtypes["city"])  # "str" from pandas 3 on, "object" before
    assert table_columns(prompt) == {"city": text_dtype, "population": "int64", "coastal": "bool"}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('a list "columns" of objects', "columns"),
        ("a list of cities", "cities"),
        ("under the key rows", "rows"),
        ("nothing here", "items"),
    ],
)
def test_list_key(text: str, key: str) -> None:
    assert list_key(text) == key


def test_json_reply_lists_each_column_with_its_dtype(emu: RunningEmulator) -> None:
    import httpx

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    prompt = interpolate(
        'Summarise the columns of {df} as JSON: a list "columns" of objects with keys name, dtype.', {"df": frame}
    )
    body = {
        "model": "deepseek-v4-flash",
        "messages": [{"role": "user", "content": prompt}],
        "response_format": {"type": "json_object"},
    }
    answer = httpx.post(
        f"{emu.base_url}/chat/completions", json=body, headers={"Authorization": "Bearer sk-emulator"}, timeout=30
    ).json()
    data = json.loads(answer["choices"][0]["message"]["content"])
    assert data == {"columns": [{"name": "a", "dtype": "int64"}, {"name": "b", "dtype": data["columns"][1]["dtype"]}]}
    assert data["columns"][1]["dtype"] in ("str", "object")
