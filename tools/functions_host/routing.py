"""ASP.NET-style route templates as Azure Functions uses them: `{id}`, `{id:int}`, `{id?}`, `{*rest}`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar
from urllib.parse import unquote

from tools.functions_host.config import HostConfigError

T = TypeVar("T")
Check = Callable[[str], bool]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


# Culture-invariant, as the real host parses: ASCII digits only (`\d`, int() and Decimal() also take "٣" and "²").
_ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")
_ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _integer_within(bounds: tuple[int, int]) -> Check:
    def check(value: str) -> bool:
        text = value.strip()
        # A length cap first: a thousand-digit value is no int32 and should not cost a big-number conversion.
        return len(text) <= 24 and _ASCII_INTEGER.fullmatch(text) is not None and bounds[0] <= int(text) <= bounds[1]

    return check


def _is_number(value: str) -> bool:
    text = value.strip()
    if len(text) > 400 or not _ASCII_NUMBER.fullmatch(text):
        return False
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value.strip("{}()"))
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _numbers(args: str, constraint: str, counts: tuple[int, ...]) -> list[int]:
    parts = [part.strip() for part in args.split(",")]
    if len(parts) not in counts or not all(re.fullmatch(r"-?[0-9]+", part) for part in parts):
        raise HostConfigError(f"route constraint {constraint}({args}) needs {counts} integer argument(s)")
    return [int(part) for part in parts]


def _regex(args: str) -> Check:
    pattern = re.compile(args, re.IGNORECASE)
    return lambda v: pattern.search(v) is not None


def _min(args: str) -> Check:
    (bound,) = _numbers(args, "min", (1,))
    return lambda v: _integer_within(_INT64)(v) and int(v) >= bound


def _max(args: str) -> Check:
    (bound,) = _numbers(args, "max", (1,))
    return lambda v: _integer_within(_INT64)(v) and int(v) <= bound


def _range(args: str) -> Check:
    low, high = _numbers(args, "range", (2,))
    return _integer_within((low, high))


def _min_length(args: str) -> Check:
    (size,) = _numbers(args, "minlength", (1,))
    return lambda v: len(v) >= size


def _max_length(args: str) -> Check:
    (size,) = _numbers(args, "maxlength", (1,))
    return lambda v: len(v) <= size


def _length(args: str) -> Check:
    sizes = _numbers(args, "length", (1, 2))
    low, high = sizes[0], sizes[-1]
    return lambda v: low <= len(v) <= high


# The inline constraints of ASP.NET routing (culture-invariant, as the real host applies them).
_SIMPLE_CONSTRAINTS: dict[str, Check] = {
    "int": _integer_within(_INT32),
    "long": _integer_within(_INT64),
    "bool": lambda v: v.strip().lower() in ("true", "false"),
    "guid": _is_guid,
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "decimal": _is_number,
    "double": _is_number,
    "float": _is_number,
    "datetime": _is_datetime,
    "required": lambda v: v != "",
}
_CONSTRAINTS_WITH_ARGUMENTS: dict[str, Callable[[str], Check]] = {
    "regex": _regex,
    "min": _min,
    "max": _max,
    "range": _range,
    "minlength": _min_length,
    "maxlength": _max_length,
    "length": _length,
}


def _constraint(name: str, args: str | None) -> Check:
    if args is None and name in _SIMPLE_CONSTRAINTS:
        return _SIMPLE_CONSTRAINTS[name]
    if args is not None and name in _CONSTRAINTS_WITH_ARGUMENTS:
        return _CONSTRAINTS_WITH_ARGUMENTS[name](args)
    shown = name if args is None else f"{name}({args})"
    raise HostConfigError(f"route constraint {shown!r} is not supported by the local host")


@dataclass(frozen=True)
class Parameter:
    name: str
    checks: tuple[Check, ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.checks)


@dataclass(frozen=True)
class Segment:
    parts: tuple[str | Parameter, ...]
    pattern: re.Pattern[str] | None  # only for segments mixing literals and parameters

    @property
    def precedence(self) -> int:
        """ASP.NET inbound precedence digit: literal, complex, constrained, plain parameter, catch-all."""
        if len(self.parts) > 1:
            return 2
        part = self.parts[0]
        if isinstance(part, str):
            return 1
        if part.catch_all:
            return 5
        return 3 if part.checks else 4


def _parse_parameter(text: str, template: str) -> Parameter:
    catch_all = text.startswith("*")
    text = text.lstrip("*")
    match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text)
    if not match:
        raise HostConfigError(f"route {template!r}: bad parameter {{{text}}}")
    name, rest = match[0], text[match.end() :]
    checks: list[Check] = []
    while rest.startswith(":"):
        constraint = re.match(r":([A-Za-z]+)", rest)
        if not constraint:
            raise HostConfigError(f"route {template!r}: bad constraint in {{{text}}}")
        rest = rest[constraint.end() :]
        args = None
        if rest.startswith("("):
            depth, end = 0, -1
            for index, char in enumerate(rest):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0:
                    end = index
                    break
            if end < 0:
                raise HostConfigError(f"route {template!r}: unbalanced parentheses in {{{text}}}")
            args, rest = rest[1:end], rest[end + 1 :]
        checks.append(_constraint(constraint[1].lower(), args))
    optional = rest == "?"
    default = rest[1:] if rest.startswith("=") else None
    if rest and not optional and default is None:
        raise HostConfigError(f"route {template!r}: cannot read {{{text}}}")
    return Parameter(name, tuple(checks), optional, default, catch_all)


def _read_parameter(text: str, start: int, template: str) -> tuple[str, int]:
    """The text of a `{...}` parameter starting after its `{`, where `{{`/`}}` stand for braces (as in
    `regex(^\\d{{3}}$)`), and the index just past its closing `}`."""
    inner = ""
    index = start
    while index < len(text):
        if text.startswith("{{", index) or text.startswith("}}", index):
            inner += text[index]
            index += 2
        elif text[index] == "}":
            return inner, index + 1
        else:
            inner += text[index]
            index += 1
    raise HostConfigError(f"route {template!r}: unclosed '{{'")


def _parse_segment(text: str, template: str) -> Segment:
    parts: list[str | Parameter] = []
    literal = ""
    index = 0
    while index < len(text):
        char = text[index]
        if text.startswith("{{", index) or text.startswith("}}", index):
            literal += char
            index += 2
        elif char == "{":
            inner, index = _read_parameter(text, index + 1, template)
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(_parse_parameter(inner, template))
        elif char == "}":
            raise HostConfigError(f"route {template!r}: unexpected '}}'")
        else:
            literal += char
            index += 1
    if literal:
        parts.append(literal)
    if not parts:
        raise HostConfigError(f"route {template!r}: empty segment")
    pattern = None
    if len(parts) > 1:
        if any(isinstance(p, Parameter) and (p.catch_all or p.optional) for p in parts):
            raise HostConfigError(f"route {template!r}: optional or catch-all parameters must stand alone")
        # Greedy parameters find each literal from the right, as ASP.NET matches complex segments.
        regex = "".join(re.escape(p) if isinstance(p, str) else f"(?P<{p.name}>.+)" for p in parts)
        pattern = re.compile(regex, re.IGNORECASE)
    return Segment(tuple(parts), pattern)


@dataclass(frozen=True)
class RouteTemplate:
    text: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, text: str) -> RouteTemplate:
        stripped = text.strip("/")
        segments = tuple(_parse_segment(s, text) for s in stripped.split("/")) if stripped else ()
        for position, segment in enumerate(segments):
            part = segment.parts[0]
            if isinstance(part, Parameter) and part.catch_all and position != len(segments) - 1:
                raise HostConfigError(f"route {text!r}: a catch-all parameter must be the last segment")
        return cls(text, segments)

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(segment.precedence for segment in self.segments)

    def match(self, raw_segments: list[str]) -> dict[str, str] | None:
        """Route values for a path split on '/' (still percent-encoded), or None if it does not fit."""
        values: dict[str, str] = {}
        for position, segment in enumerate(self.segments):
            single = segment.parts[0] if len(segment.parts) == 1 else None
            if isinstance(single, Parameter) and single.catch_all:
                value = "/".join(unquote(s) for s in raw_segments[position:])
                return self._accept(single, value, values)
            if position >= len(raw_segments):
                if isinstance(single, Parameter) and (single.optional or single.default is not None):
                    if single.default is not None:
                        values[single.name] = single.default
                    continue
                return None
            value = unquote(raw_segments[position])
            if isinstance(single, str):
                if value.lower() != single.lower():
                    return None
            elif isinstance(single, Parameter):
                if value == "" or self._accept(single, value, values) is None:
                    return None
            elif not self._match_complex(segment, value, values):
                return None
        return values if len(raw_segments) <= len(self.segments) else None

    @staticmethod
    def _accept(parameter: Parameter, value: str, values: dict[str, str]) -> dict[str, str] | None:
        if value == "" and parameter.default is not None:
            value = parameter.default
        if value and not parameter.accepts(value):
            return None
        if value:
            values[parameter.name] = value
        return values

    @staticmethod
    def _match_complex(segment: Segment, value: str, values: dict[str, str]) -> bool:
        assert segment.pattern is not None
        found = segment.pattern.fullmatch(value)
        if not found:
            return False
        for part in segment.parts:
            if isinstance(part, Parameter):
                if not part.accepts(found[part.name]):
                    return False
                values[part.name] = found[part.name]
        return True


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    target: T
    route_params: dict[str, str]


class Router(Generic[T]):
    """Picks the function for a request: the most specific template that fits the path AND the method.

    A path that fits only with another method is a plain 404, as on the real host (it never answers 405).
    """

    def __init__(self, entries: Iterable[tuple[str, frozenset[str] | None, T]]) -> None:
        parsed = [(RouteTemplate.parse(route), methods, target) for route, methods, target in entries]
        self._entries = sorted(parsed, key=lambda entry: entry[0].precedence)

    def resolve(self, method: str, path: str) -> RouteMatch[T] | None:
        """`path` is what follows the route prefix, percent-encoded; one trailing slash is ignored."""
        trimmed = path.strip("/")
        raw_segments = trimmed.split("/") if trimmed else []
        for template, methods, target in self._entries:
            if methods is not None and method.upper() not in methods:
                continue
            values = template.match(raw_segments)
            if values is not None:
                return RouteMatch(target, values)
        return None
