"""Brace-safe interpolation: only references to existing variables change, and values stay bounded."""

from __future__ import annotations

import json
import re
from collections import namedtuple
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategy_parts import attribute, braced, index, joined

from deepseek_magic.core.errors import DeepSeekError
from deepseek_magic.features.interpolation import STR_CAP, InterpolationError, interpolate, render_value


class Thing:
    """An object with public, private and failing attributes."""

    def __init__(self) -> None:
        self.name = "widget"
        self.items = [10, 20, 30]
        self._secret = "hidden"

    @property
    def broken(self) -> int:
        raise RuntimeError("sensor\noffline")

    def __repr__(self) -> str:
        return "Thing()"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class Hostile:
    """Everything raises: attribute reads, item reads, repr and len."""

    def __getattr__(self, name: str) -> Any:
        raise ValueError(f"no {name}")

    def __getitem__(self, key: Any) -> Any:
        raise TypeError("nope")

    def __repr__(self) -> str:
        raise OSError("repr exploded")

    def __len__(self) -> int:
        raise ZeroDivisionError


@pytest.fixture
def ns() -> dict[str, Any]:
    return {
        "x": 5,
        "name": "Ada",
        "thing": Thing(),
        "d": {"k": [1, 2, 3], "nested": {"deep": "value"}, "it's": "quoted"},
        "df": pd.DataFrame({"city": ["Oslo", "Lima"], "temp": [3.5, 18.0]}),
        "__name__": "__main__",
        "_": "last output",
    }


# --- what is left alone -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "def f(): return {x: 1}",
        '{"a": 1}',
        '{"a": {"b": {"c": 1}}}',
        "{'x': [1, 2]}",
        'print(f"{x!r} and {x:>10} and {x=}")',
        "{ x }",
        "{x }",
        "{}",
        "{0}",
        "{0.5}",
        "{x",
        "x}",
        "}{x",
        "{{ x }}",
        "function f() { if (y) { return {y}; }}",
        "\\frac{1}{2} and \\textbf{bold}",
        "{x.}",
        "{x[}",
        "{x[0 ]}",
        "{x[a]}",
        '{x["a\\"b"]}',
        "{x()}",
        "{x + 1}",
        "{-x}",
        "{__name__}",
        "{nobody}",
        "{nobody.attr[0]}",
    ],
)
def test_braces_that_are_not_references_to_existing_names_are_kept(text: str, ns: dict[str, Any]) -> None:
    assert interpolate(text, ns) == text


def test_code_with_braces_keeps_its_braces_around_a_real_reference(ns: dict[str, Any]) -> None:
    text = 'Review this for {name}:\ndef f():\n    return {x: 1, "y": {"z": 2}}\n'
    assert interpolate(text, ns) == 'Review this for Ada:\ndef f():\n    return {x: 1, "y": {"z": 2}}\n'


def test_escaped_reference_gives_the_literal_braces_even_when_the_name_exists(ns: dict[str, Any]) -> None:
    assert interpolate("{{x}} is {x}", ns) == "{x} is 5"
    assert interpolate("{{d['k'][0]}}", ns) == "{d['k'][0]}"
    assert interpolate("{{missing}}", ns) == "{missing}"


def test_escapes_do_not_touch_closing_braces_of_nested_data(ns: dict[str, Any]) -> None:
    # str.format would turn "}}" into "}" and break the JSON the user pasted.
    text = '{"outer": {"inner": [1, {"x": 2}]}} and {x}'
    assert interpolate(text, ns) == '{"outer": {"inner": [1, {"x": 2}]}} and 5'


def test_a_bare_reference_inside_code_is_substituted_when_the_name_exists(ns: dict[str, Any]) -> None:
    # The known limit of any brace syntax: JS shorthand ``{x}`` looks like a reference.
    # Escaping it (``{{x}}``) or the magic's --raw keeps it.
    assert interpolate("return {x};", ns) == "return 5;"
    assert interpolate("return {{x}};", ns) == "return {x};"


def test_triple_braces_keep_one_literal_pair(ns: dict[str, Any]) -> None:
    assert interpolate("{{{x}}}", ns) == "{{x}}"


def test_inserted_values_are_not_interpolated_again() -> None:
    namespace = {"a": "{b}", "b": "secret", "c": "{{b}}"}
    assert interpolate("{a} {c}", namespace) == "{b} {{b}}"


def test_single_underscore_root_names_are_allowed(ns: dict[str, Any]) -> None:
    assert interpolate("previous: {_}", ns) == "previous: last output"


# --- references -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{x}", "5"),
        ("Hello {name}!", "Hello Ada!"),
        ("{thing.name}", "widget"),
        ("{thing.items[1]}", "20"),
        ("{thing.items[-1]}", "30"),
        ('{d["k"]}', "[1, 2, 3]"),
        ("{d['k'][2]}", "3"),
        ('{d["nested"]["deep"]}', "value"),
        ('{d["it\'s"]}', "quoted"),
        ("{df.columns[0]}", "city"),
        ("{df.shape}", "[2, 2]"),
        ("{name.upper}", None),
        ("{x}{x}", "55"),
    ],
)
def test_attribute_and_index_chains(text: str, expected: str | None, ns: dict[str, Any]) -> None:
    result = interpolate(text, ns)
    if expected is None:
        assert result.startswith("<built-in method upper of str object")
    else:
        assert result == expected


def test_a_dataframe_column_reference_renders_the_series(ns: dict[str, Any]) -> None:
    result = interpolate('{df["temp"]}', ns)
    assert result.splitlines() == ["Series 'temp': 2 values, dtype float64", "3.5", "18.0"]


def test_private_and_dunder_attributes_are_refused(ns: dict[str, Any]) -> None:
    with pytest.raises(InterpolationError, match=r"^\{thing\._secret\}: attribute '_secret' starts with '_'"):
        interpolate("{thing._secret}", ns)
    with pytest.raises(InterpolationError, match="__class__"):
        interpolate("{x.__class__}", ns)
    with pytest.raises(InterpolationError, match="__globals__"):
        interpolate("{thing.__init__.__globals__}", ns)


def test_failing_attribute_lookup_names_the_expression_and_reason(ns: dict[str, Any]) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate("summarise {df.colums}", ns)
    assert str(caught.value) == "{df.colums}: 'DataFrame' object has no attribute 'colums'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{d["nope"]}', '{d["nope"]}: no key "nope" in dict'),
        ("{d['k'][7]}", "{d['k'][7]}: index 7 is out of range (length 3)"),
        ("{x[0]}", "{x[0]}: 'int' object is not subscriptable"),
        ("{thing.broken}", "{thing.broken}: sensor offline"),
        ("{d[99999999999999999999]}", "{d[99999999999999999999]}: no key 99999999999999999999 in dict"),
    ],
)
def test_failing_lookups_raise_one_line_errors(text: str, message: str, ns: dict[str, Any]) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate(text, ns)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_interpolation_error_is_a_value_error_with_a_one_line_traceback(ns: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as caught:
        interpolate("{thing.nope}", ns)
    assert isinstance(caught.value, DeepSeekError)
    assert caught.value._render_traceback_() == [
        "InterpolationError: {thing.nope}: 'Thing' object has no attribute 'nope'"
    ]


def test_hostile_objects_only_ever_give_interpolation_errors() -> None:
    hostile = {"h": Hostile()}
    for text in ("{h.a}", "{h[0]}", '{h["k"]}'):
        with pytest.raises(InterpolationError):
            interpolate(text, hostile)
    assert interpolate("{h}", hostile) == "<Hostile object (repr failed)>"


def test_non_string_text_is_an_interpolation_error() -> None:
    with pytest.raises(InterpolationError, match="must be a string"):
        interpolate(b"{x}", {"x": 1})  # type: ignore[arg-type]


# --- rendering --------------------------------------------------------------------------


def test_strings_are_inserted_without_quotes_up_to_the_string_cap() -> None:
    assert render_value("plain 'text'") == "plain 'text'"
    long = "a" * 5000
    assert render_value(long, budget=100) == long  # a string the user chose is not cut to the budget
    huge = "b" * (STR_CAP + 1234)
    rendered = render_value(huge)
    assert STR_CAP - 3 <= len(rendered) <= STR_CAP
    note = re.search(r"… \[truncated ([\d,]+) chars\]$", rendered)
    assert note is not None
    assert note.start() + int(note.group(1).replace(",", "")) == len(huge)
    assert set(rendered[: note.start()]) == {"b"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(42, "42"), (2.5, "2.5"), (True, "True"), (None, "None"), (1 + 2j, "(1+2j)"), (np.float64(1.5), "1.5")],
)
def test_scalars(value: Any, expected: str) -> None:
    assert render_value(value) == expected


def test_a_small_dataframe_is_header_dtypes_and_csv() -> None:
    frame = pd.DataFrame({"city": ["Oslo", "Lima"], "temp": [3.5, 18.0], "n": [1, 2]})
    assert render_value(frame).splitlines() == [
        "DataFrame: 2 rows × 3 columns",
        f"dtypes: city: {frame['city'].dtype}, temp: float64, n: int64",
        "city,temp,n",
        "Oslo,3.5,1",
        "Lima,18.0,2",
    ]


def test_a_meaningful_index_is_kept_and_a_default_one_is_not() -> None:
    frame = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["a", "b"], name="key"))
    assert render_value(frame).splitlines()[2:] == ["key,v", "a,1", "b,2"]
    shifted = pd.DataFrame({"v": [1, 2]}, index=[5, 6])
    assert render_value(shifted).splitlines()[2:] == [",v", "5,1", "6,2"]


def test_a_10000_row_dataframe_shows_the_first_rows_within_budget() -> None:
    frame = pd.DataFrame({"id": range(10_000), "label": [f"item-{i}" for i in range(10_000)], "score": 0.25})
    rendered = render_value(frame, budget=1000)
    lines = rendered.splitlines()
    assert len(rendered) <= 1000
    assert lines[0] == "DataFrame: 10,000 rows × 3 columns"
    assert lines[2] == "id,label,score"
    assert lines[3] == "0,item-0,0.25"
    shown = len(lines) - 4
    assert shown > 10
    assert lines[-1] == f"(first {shown:,} of 10,000 rows)"
    assert lines[-2] == f"{shown - 1},item-{shown - 1},0.25"


def test_a_wide_dataframe_narrows_its_columns_and_dtypes_within_budget() -> None:
    frame = pd.DataFrame(np.arange(20 * 600).reshape(20, 600), columns=[f"column_{i}" for i in range(600)])
    rendered = render_value(frame)
    lines = rendered.splitlines()
    assert len(rendered) <= 4000
    assert lines[0] == "DataFrame: 20 rows × 600 columns"
    assert re.search(r"… \(\d+ more columns\)$", lines[1])
    note = re.fullmatch(r"\(first (\d+) of 20 rows; first (\d+) of 600 columns\)", lines[-1])
    assert note is not None
    rows, cols = int(note.group(1)), int(note.group(2))
    assert rows >= 5  # a handful of whole records beats one very long one
    assert lines[2].split(",") == [f"column_{i}" for i in range(cols)]
    assert len(lines) == 2 + 1 + rows + 1


def test_long_text_cells_are_shortened_so_several_rows_fit() -> None:
    frame = pd.DataFrame({"text": ["word " * 1000] * 30})
    rendered = render_value(frame, budget=2000)
    assert len(rendered) <= 2000
    assert rendered.count("…") >= 3
    assert "(first" in rendered


def test_a_tiny_budget_is_still_respected_by_a_dataframe() -> None:
    frame = pd.DataFrame({"a": range(100)})
    for budget in (0, 5, 30, 60, 120):
        assert len(render_value(frame, budget=budget)) <= budget


def test_a_series_shows_name_length_dtype_and_first_values() -> None:
    series = pd.Series(range(10_000), name="price", dtype="int64")
    lines = render_value(series, budget=300).splitlines()
    assert lines[0] == "Series 'price': 10,000 values, dtype int64"
    assert lines[1:4] == ["0", "1", "2"]
    assert re.fullmatch(r"\(first \d+ of 10,000 rows\)", lines[-1])
    labelled = pd.Series([1.5, 2.5], index=["a", "b"])
    assert render_value(labelled).splitlines() == ["Series: 2 values, dtype float64", "a,1.5", "b,2.5"]


def test_small_containers_are_compact_json() -> None:
    assert render_value([1, "two", None, True]) == '[1, "two", null, true]'
    assert render_value({"a": 1, "b": [1, 2]}) == '{"a": 1, "b": [1, 2]}'
    assert render_value((1, 2)) == "[1, 2]"
    assert render_value({"ключ": "значение"}) == '{"ключ": "значение"}'
    assert render_value({1: "int key"}) == '{"1": "int key"}'
    point = namedtuple("point", "x y")
    assert render_value(point(1, 2)) == '{"x": 1, "y": 2}'


def test_a_long_list_drops_items_with_a_readable_note_and_stays_json() -> None:
    rendered = render_value(list(range(10_000)), budget=500)
    assert len(rendered) <= 500
    data = json.loads(rendered)
    kept = data[:-1]
    assert kept == list(range(len(kept)))
    assert data[-1] == f"… ({10_000 - len(kept):,} more items)"
    assert len(kept) > 50


def test_nested_data_over_budget_is_cut_at_every_level() -> None:
    value = {f"key{i}": {"values": list(range(500)), "text": "x" * 3000} for i in range(50)}
    rendered = render_value(value, budget=2000)
    assert len(rendered) <= 2000
    data = json.loads(rendered)
    assert data["…"].endswith("more items)")
    first = data["key0"]
    assert first["values"][-1].endswith("more items)")
    assert "truncated" in first["text"]


def test_sets_render_in_a_stable_order() -> None:
    assert render_value({"pear", "apple", "fig"}) == '["apple", "fig", "pear"]'
    assert render_value(frozenset({3, 1, 2})) == "[1, 2, 3]"
    assert render_value({2.5, "b", 1}) == '[2.5, 1, "b"]'  # mixed: by type name, then repr


def test_cycles_and_deep_nesting_do_not_explode() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert render_value(loop) == '[1, "<cycle>"]'
    deep: Any = "bottom"
    for _ in range(50):
        deep = [deep]
    rendered = render_value(deep, budget=200)
    assert len(rendered) <= 200
    assert "bottom" not in rendered and "…" in rendered


def test_numpy_arrays_show_shape_dtype_and_summarised_values() -> None:
    small = np.array([1, 2, 3])
    assert render_value(small) == "ndarray: shape (3,), dtype int64, 3 values\n[1, 2, 3]"
    big = np.arange(1_000_000, dtype=np.float32).reshape(1000, 1000)
    rendered = render_value(big, budget=1500)
    assert len(rendered) <= 1500
    assert rendered.startswith("ndarray: shape (1000, 1000), dtype float32, 1,000,000 values\n")
    assert "..." in rendered


def test_other_objects_use_a_bounded_repr() -> None:
    assert render_value(Thing()) == "Thing()"
    assert render_value(BadRepr()) == "<BadRepr object (repr failed)>"
    rendered = render_value(range(10**9), budget=8)
    assert rendered == "range(0, 1000000000)"[:8]


def test_rendering_is_deterministic() -> None:
    value = {"s": {"b", "a", "c"}, "df": pd.DataFrame({"a": range(300)}), "l": list(range(3000))}
    assert render_value(value, budget=700) == render_value(value, budget=700)


# --- properties -------------------------------------------------------------------------

_BRACEY = st.text(alphabet=st.sampled_from(list("{}[]()._'\"0-9 !:=xyzdfkq\n\\")) | st.characters(), max_size=80)
_IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


_REFERENCE = st.tuples(
    _IDENT, st.lists(st.one_of(_IDENT.map(attribute), st.integers(-3, 3).map(index)), max_size=3)
).map(joined)

_HOSTILE_NS: dict[str, Any] = {
    "x": 1,
    "xy": [1, {"k": Hostile()}],
    "d": {"k": [1, 2], "0": "zero"},
    "df": pd.DataFrame({"a": [1, 2]}),
    "q": Hostile(),
    "z": BadRepr(),
    "f": Thing(),
}


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_BRACEY, _REFERENCE.map(braced)), max_size=6).map("".join))
def test_any_text_gives_a_string_or_an_interpolation_error(text: str) -> None:
    try:
        result = interpolate(text, _HOSTILE_NS, budget=200)
    except InterpolationError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(result, str)


@settings(max_examples=300, deadline=None)
@given(_BRACEY)
def test_text_without_existing_names_or_escapes_is_unchanged(text: str) -> None:
    assume("{{" not in text)
    assert interpolate(text, {}) == text
    assert interpolate(text, {"absent_name": 1, "__name__": "__main__"}) == text


@settings(max_examples=200, deadline=None)
@given(_BRACEY, _REFERENCE, _BRACEY)
def test_an_escaped_reference_loses_one_brace_pair_and_nothing_else(before: str, reference: str, after: str) -> None:
    # Surround with spaces so the neighbours cannot merge into the escape.
    if "{{" in before or "{{" in after or before.endswith("{") or after.startswith("}"):
        return
    text = f"{before} {{{{{reference}}}}} {after}"
    assert interpolate(text, {}) == f"{before} {{{reference}}} {after}"


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=30) | st.dictionaries(st.text(max_size=10), children, max_size=30),
    max_leaves=200,
)


@settings(max_examples=100, deadline=None)
@given(_JSONISH, st.integers(0, 3000))
def test_containers_always_fit_the_budget(value: Any, budget: int) -> None:
    if isinstance(value, str):
        return
    rendered = render_value(value, budget=budget)
    assert len(rendered) <= budget
    assert rendered == render_value(value, budget=budget)


def test_a_wide_frame_names_the_columns_it_leaves_out_of_the_dtypes_line() -> None:
    frame = pd.DataFrame({f"column_{i}": [i] for i in range(40)})
    lines = interpolate("{df}", {"df": frame}, budget=300).splitlines()
    assert lines[0] == "DataFrame: 1 rows × 40 columns"
    dtypes = lines[1]
    assert dtypes.startswith("dtypes: column_0: int64, ") and len(dtypes) <= 300 // 3
    shown = dtypes.count(": int64")
    more = re.fullmatch(r".*, … \((\d+) more columns\)", dtypes)
    assert more is not None and shown >= 1 and shown + int(more.group(1)) == 40


def test_a_long_text_cell_is_cut_to_two_hundred_characters() -> None:
    text = interpolate("{df}", {"df": pd.DataFrame({"t": ["x" * 300]})})
    assert text.splitlines()[-1] == "x" * 199 + "…"


@pytest.mark.parametrize(
    ("value", "shown"),
    [({3, 1, 2}, "[1, 2, 3]"), ({"b", "a"}, '["a", "b"]'), ({"b", 1, "a", 2.5}, '[2.5, 1, "a", "b"]')],
)
def test_sets_are_shown_in_a_stable_order(value: set[Any], shown: str) -> None:
    assert interpolate("{s}", {"s": value}) == shown


def test_only_leading_underscores_make_an_attribute_private() -> None:
    from types import SimpleNamespace

    names = {"v": SimpleNamespace(__x__=1, value__=2)}
    assert interpolate("{v.value__}", names) == "2"
    with pytest.raises(InterpolationError, match="private and dunder attributes are not read"):
        interpolate("{v.__x__}", names)


def test_a_set_of_numbers_is_shown_in_numeric_order() -> None:
    assert interpolate("{s}", {"s": {100, 9, 10}}) == "[9, 10, 100]"


def test_dunder_roots_stay_as_typed_and_other_names_with_underscores_are_filled() -> None:
    names = {"__x__": 1, "__name__": "__main__", "total__": 5, "__lead": 6}
    assert interpolate("{__x__} {__name__} {total__} {__lead}", names) == "{__x__} {__name__} 5 6"
