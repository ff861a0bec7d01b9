"""Safe capture: every object becomes JSON, nothing raises, cuts are visible."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections import namedtuple
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fallom
from fallom.protocol._capture import Limits, to_jsonable
from fallom.testing import CapturedSpans, view


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


@dataclasses.dataclass
class Point:
    x: int
    y: Point | None = None


class Colour(enum.Enum):
    RED = "red"


Pair = namedtuple("Pair", "left right")


def roundtrip(value: Any, **limits: int) -> Any:
    result = to_jsonable(value, Limits(**limits))
    json.dumps(result, allow_nan=False)  # strictly valid JSON
    return result


def test_cycles_are_marked() -> None:
    a: list = [1]
    a.append(a)
    d: dict = {"self": None}
    d["self"] = d
    assert roundtrip(a) == [1, "<cycle list>"]
    assert roundtrip(d) == {"self": "<cycle dict>"}


def test_shared_but_acyclic_values_are_not_cycles() -> None:
    shared = [1]
    assert roundtrip([shared, shared]) == [[1], [1]]


def test_broken_repr() -> None:
    assert roundtrip(BrokenRepr()) == "<unrepresentable BrokenRepr>"
    assert roundtrip({BrokenRepr(): 1}) == {"<unrepresentable BrokenRepr>": 1}


def test_scalars_bytes_sets_enums_namedtuples() -> None:
    assert roundtrip(b"caf\xc3\xa9") == "café"
    assert roundtrip(b"\xff\xfe") == "<2 bytes>"
    assert roundtrip({3, 1, 2}) == [1, 2, 3]
    assert roundtrip({1, "a"}) in ([1, "a"], ["a", 1])
    assert roundtrip(Colour.RED) == "red"
    assert roundtrip(Pair(1, 2)) == {"left": 1, "right": 2}
    assert roundtrip((1, 2)) == [1, 2]


def test_nan_and_infinity_become_strings() -> None:
    assert roundtrip([math.nan, math.inf, -math.inf, 1.5]) == ["NaN", "Infinity", "-Infinity", 1.5]


def test_non_string_keys() -> None:
    assert roundtrip({1: "a", None: "b", (1, 2): "c"}) == {"1": "a", "None": "b", "(1, 2)": "c"}


def test_dataclasses_and_pydantic_models() -> None:
    assert roundtrip(Point(1, Point(2))) == {"x": 1, "y": {"x": 2, "y": None}}
    pydantic = pytest.importorskip("pydantic")

    class Message(pydantic.BaseModel):
        role: str
        content: str

    assert roundtrip(Message(role="user", content="hi")) == {"role": "user", "content": "hi"}


def test_large_values_are_cut_with_markers() -> None:
    assert roundtrip("x" * 50, max_chars=10) == "x" * 10 + "…[truncated 40 chars]"
    assert roundtrip(list(range(5)), max_items=2) == [0, 1, "…[3 more items]"]
    assert roundtrip({str(i): i for i in range(4)}, max_items=1) == {"0": 0, "…": "[3 more keys]"}
    deep: Any = "bottom"
    for _ in range(50):
        deep = [deep]
    out = roundtrip(deep, max_depth=3)
    assert out == [[["<list at max depth>"]]]


def test_huge_list_is_not_walked() -> None:
    assert len(roundtrip(range(10**9).__reversed__(), max_items=3)) < 100  # repr, not iteration
    assert roundtrip(list(range(100_000)), max_items=2)[-1] == "…[99998 more items]"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: st.lists(children) | st.dictionaries(
        st.text() | st.integers() | st.floats(allow_nan=False), children)
    | st.tuples(children, children) | st.frozensets(st.integers()),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_any_value_becomes_strict_json(value: Any) -> None:
    roundtrip(value, max_chars=50, max_items=5, max_depth=4)


@settings(max_examples=100, deadline=None)
@given(st.builds(lambda v: [v, BrokenRepr(), {v: v} if isinstance(v, (int, str)) else v], json_values))
def test_fuzz_with_hostile_objects(value: Any) -> None:
    roundtrip(value, max_chars=20, max_items=3, max_depth=3)


def test_capture_limits_from_init(spans: CapturedSpans) -> None:
    fallom.init(capture_max_chars=5)

    @fallom.trace_llm
    def echo(text: str) -> str:
        return text

    echo("abcdefgh")
    assert view(spans[0]).input == {"text": "abcde…[truncated 3 chars]"}
    assert view(spans[0]).output == "abcde…[truncated 3 chars]"


def test_chat_messages_are_copied_and_still_obey_every_limit() -> None:
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hi", "name": None, "n": 1, "ok": True}, "x"]
    copied = to_jsonable(messages)
    assert copied == messages
    assert copied[0] is not messages[0]  # a copy: later changes are not recorded
    messages[0]["content"] = "changed content"
    assert copied[0]["content"] == "You are terse."
    assert to_jsonable(messages, Limits(max_chars=8))[0]["content"] == \
        "changed …[truncated 7 chars]"
    assert to_jsonable(messages, Limits(max_items=1)) == [
        {"role": "system", "…": "[1 more keys]"}, "…[2 more items]"]
    assert to_jsonable(messages, Limits(max_depth=1)) == [
        "<dict at max depth>", "<dict at max depth>", "x"]
    assert to_jsonable([messages], Limits(max_depth=2)) == [
        ["<dict at max depth>", "<dict at max depth>", "x"]]
