"""The one reader of untrusted JSON (API bodies, webhooks, queue messages): bounded in size, depth and numbers."""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

# `json.loads` alone recurses once per nesting level (a body nested ~1,000 deep raises RecursionError), converts an
# integer literal of any length (over 4,300 digits it raises a plain ValueError, below that it costs quadratic time),
# and accepts `NaN` and `Infinity`, which no JSON peer can read back and which break canonical hashing.

# The product's largest integer is a 64-bit id (19 digits); anything longer is not a value we could store.
MAX_INTEGER_DIGITS = 20
MAX_NUMBER_CHARS = 40
# Our bodies nest 3 levels (a cita's patient), GHL's webhooks 4; the margin is for fields we ignore.
MAX_DEPTH = 32

# A JSON string (possessive, so an unterminated one runs to the end instead of backtracking) or a bracket.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonInputError(ValueError):
    """Input that is not JSON we accept; `reason` is a short English code for logs and error details."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise JsonInputError("number_too_long")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonInputError("number_too_long")
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as infinity
        raise JsonInputError("number_out_of_range")
    return value


def _constant(name: str) -> Any:
    raise JsonInputError("non_finite_number")


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in `raw`, brackets inside strings ignored; linear in the input."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def _storable(value: Any) -> bool:
    """No NUL and no lone surrogate in any string or key: no database (nor UTF-8) can hold them."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return False
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def read_json(raw: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The value `raw` holds; raises `JsonInputError` for anything too large, too deep, not UTF-8, not JSON, or
    holding text no database can store."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise JsonInputError("too_large")
    if nesting_depth(data) > max_depth:
        raise JsonInputError("too_deep")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonInputError("invalid_utf8") from None
    try:
        value = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except JsonInputError:
        raise
    except (ValueError, RecursionError):
        raise JsonInputError("invalid_json") from None
    # NUL and surrogates can only arrive as \u escapes (raw ones are refused above or by the decoder).
    if "\\u" in text and not _storable(value):
        raise JsonInputError("invalid_text")
    return value
