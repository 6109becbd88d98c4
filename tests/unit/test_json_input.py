"""The bounded JSON reader: what it accepts it reads exactly as json.loads would; everything else is refused
with a JsonInputError, never another exception, a deep recursion or a slow big-number conversion."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_core.json_input import MAX_DEPTH, JsonInputError, nesting_depth, read_json

LIMIT = 64 * 1024

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**19), max_value=10**19)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=30
)


def _storable(value: Any) -> bool:
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text and "\\u0000" not in text


@given(json_values, st.booleans())
def test_what_it_accepts_it_reads_as_json_loads_does(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only)
    if not _storable(value):
        with pytest.raises(JsonInputError):
            read_json(raw, max_bytes=LIMIT)
        return
    assert read_json(raw.encode("utf-8"), max_bytes=LIMIT) == json.loads(raw)


@settings(max_examples=300)
@given(st.binary(max_size=2048) | st.text(max_size=2048).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_are_read_or_refused_with_a_reason(raw: bytes) -> None:
    try:
        read_json(raw, max_bytes=LIMIT)
    except JsonInputError as exc:
        assert exc.reason in {
            "too_large",
            "too_deep",
            "invalid_utf8",
            "invalid_json",
            "number_too_long",
            "number_out_of_range",
            "non_finite_number",
            "invalid_text",
        }


@given(st.integers(min_value=0, max_value=200), st.sampled_from([('{"a": ', "}"), ("[", "]")]))
def test_depth_over_the_limit_is_refused_and_under_it_read(depth: int, pair: tuple[str, str]) -> None:
    opening, closing = pair
    raw = opening * depth + "1" + closing * depth
    assert nesting_depth(raw.encode()) == depth
    if depth > MAX_DEPTH:
        with pytest.raises(JsonInputError, match="too_deep"):
            read_json(raw, max_bytes=LIMIT)
    else:
        read_json(raw, max_bytes=LIMIT)


@given(st.text(alphabet='[]{}"\\ab', max_size=300))
def test_brackets_inside_strings_do_not_count(text: str) -> None:
    encoded = json.dumps({"k": text}).encode()
    assert nesting_depth(encoded) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"NaN", "non_finite_number"),
        (b"[Infinity]", "non_finite_number"),
        (b'{"a": -Infinity}', "non_finite_number"),
        (b"1e999", "number_out_of_range"),
        (b"9" * 4301, "number_too_long"),
        (b"-" + b"9" * 21, "number_too_long"),
        (b"[" * 10_000, "too_deep"),
        (b'"\\ud800"', "invalid_text"),
        (b'{"\\u0000": 1}', "invalid_text"),
        (b"\xff", "invalid_utf8"),
        (b" " * (LIMIT + 1), "too_large"),
    ],
)
def test_each_hostile_input_is_refused_with_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(JsonInputError) as caught:
        read_json(raw, max_bytes=LIMIT)
    assert caught.value.reason == reason


def test_a_pathological_unterminated_string_is_scanned_in_linear_time() -> None:
    raw = b'"\\' * (LIMIT // 2)
    started = time.perf_counter()
    with pytest.raises(JsonInputError):
        read_json(raw, max_bytes=LIMIT)
    assert time.perf_counter() - started < 0.5


def test_floats_that_are_finite_are_kept() -> None:
    assert read_json(b"[1.5e300, -0.0]", max_bytes=LIMIT) == [1.5e300, -0.0]
    assert not math.isnan(read_json(b"1e-400", max_bytes=LIMIT))
