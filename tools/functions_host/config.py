"""Reads what `func start` reads: local.settings.json into the environment, host.json, `%SETTING%`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

# Flex Consumption's default; `func start` would otherwise let an invocation hang forever.
DEFAULT_FUNCTION_TIMEOUT = timedelta(minutes=30)

_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2})(?:\.(?P<frac>\d{1,7}))?$")
_SETTING_REFERENCE = re.compile(r"%([^%]+)%")


class HostConfigError(ValueError):
    """host.json, local.settings.json or a binding refers to something that is missing or malformed."""


def parse_timespan(value: object, *, what: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it (`[d.]hh:mm:ss[.fffffff]`); a bare number means milliseconds,
    as host.json v1 wrote polling intervals."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(milliseconds=value)
    match = _TIMESPAN.match(str(value).strip())
    if not match:
        raise HostConfigError(f"{what}: {value!r} is not a TimeSpan like '00:00:30'")
    frac = match["frac"] or "0"
    return timedelta(
        days=int(match["days"] or 0),
        hours=int(match["h"]),
        minutes=int(match["m"]),
        seconds=int(match["s"]),
        microseconds=int(frac.ljust(7, "0")) / 10,
    )


def _get(section: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """.NET configuration keys are case-insensitive, so host.json keys are too."""
    for name, value in section.items():
        if name.lower() == key.lower():
            return value
    return default


HOST_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"


def _override(document: dict[str, Any], path: list[str], value: str) -> None:
    """Set `value` at `path` in host.json's document, matching existing keys case-insensitively."""
    section = document
    for key in path[:-1]:
        existing = next((name for name in section if name.lower() == key.lower()), None)
        if existing is None or not isinstance(section[existing], dict):
            existing = existing or key
            section[existing] = {}
        section = section[existing]
    leaf = next((name for name in section if name.lower() == path[-1].lower()), path[-1])
    section[leaf] = value


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` of host.json, with the WebJobs defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: timedelta = timedelta(minutes=1)
    visibility_timeout: timedelta = timedelta(0)
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_section(cls, section: Mapping[str, Any], cpu_count: int) -> QueueOptions:
        batch_size = int(_get(section, "batchSize", 16))
        if not 1 <= batch_size <= 32:
            raise HostConfigError(f"extensions.queues.batchSize must be 1..32, got {batch_size}")
        threshold = _get(section, "newBatchThreshold")
        encoding = str(_get(section, "messageEncoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise HostConfigError(f"extensions.queues.messageEncoding must be base64 or none, got {encoding!r}")
        max_dequeue_count = int(_get(section, "maxDequeueCount", 5))
        if max_dequeue_count < 1:
            raise HostConfigError("extensions.queues.maxDequeueCount must be at least 1")
        polling = _get(section, "maxPollingInterval")
        visibility = _get(section, "visibilityTimeout")
        return cls(
            batch_size=batch_size,
            # WebJobs default: half a batch per processor.
            new_batch_threshold=int(threshold) if threshold is not None else batch_size // 2 * cpu_count,
            max_polling_interval=(
                parse_timespan(polling, what="maxPollingInterval") if polling is not None else timedelta(minutes=1)
            ),
            visibility_timeout=(
                parse_timespan(visibility, what="visibilityTimeout") if visibility is not None else timedelta(0)
            ),
            max_dequeue_count=max_dequeue_count,
            message_encoding=encoding,
        )


@dataclass(frozen=True)
class HostConfig:
    """What the local host honours from host.json."""

    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()
    function_timeout: timedelta | None = DEFAULT_FUNCTION_TIMEOUT
    # http.maxOutstandingRequests: requests held at once (waiting or running); more are answered 429 at once.
    max_outstanding_requests: int | None = None

    @classmethod
    def load(cls, app_dir: Path, environ: Mapping[str, str] | None = None) -> HostConfig:
        """host.json, then the app settings that override it (`AzureFunctionsJobHost__extensions__queues__batchSize`
        sets `extensions.queues.batchSize`, as on Azure)."""
        path = app_dir / "host.json"
        document: dict[str, Any] = {}
        if path.exists():
            try:
                document = json.loads(path.read_text(encoding="utf-8-sig"))
            except json.JSONDecodeError as error:
                raise HostConfigError(f"{path} is not valid JSON: {error}") from error
        for name, value in (environ or {}).items():
            if name.lower().startswith(HOST_OVERRIDE_PREFIX.lower()):
                _override(document, name[len(HOST_OVERRIDE_PREFIX) :].split("__"), value)
        extensions = _get(document, "extensions", {}) or {}
        http = _get(extensions, "http", {}) or {}
        timeout = _get(document, "functionTimeout")
        outstanding = int(_get(http, "maxOutstandingRequests", -1))
        return cls(
            route_prefix=str(_get(http, "routePrefix", "api")).strip("/"),
            max_outstanding_requests=outstanding if outstanding > 0 else None,
            queues=QueueOptions.from_section(_get(extensions, "queues", {}) or {}, os.cpu_count() or 1),
            function_timeout=(
                None
                if str(timeout).strip() == "-1"
                else parse_timespan(timeout, what="functionTimeout")
                if timeout is not None
                else DEFAULT_FUNCTION_TIMEOUT
            ),
        )


@dataclass(frozen=True)
class LocalSettings:
    """The parts of local.settings.json the host itself uses (besides `Values`)."""

    http_port: int | None = None


def load_local_settings(app_dir: Path, environ: MutableMapping[str, str]) -> LocalSettings:
    """Put local.settings.json `Values` into `environ` without overriding variables already set, like func."""
    path = app_dir / "local.settings.json"
    if not path.exists():
        return LocalSettings()
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise HostConfigError(f"{path} is not valid JSON: {error}") from error
    values = _get(document, "Values", {}) or {}
    if not isinstance(values, dict):
        raise HostConfigError(f"{path}: Values must be an object")
    for name, value in values.items():
        if name not in environ and value is not None:
            environ[name] = value if isinstance(value, str) else json.dumps(value)
    port = _get(_get(document, "Host", {}) or {}, "LocalHttpPort")
    return LocalSettings(http_port=int(port) if port is not None else None)


def resolve_setting_references(value: str, environ: Mapping[str, str], *, what: str) -> str:
    """Replace each `%NAME%` in a binding value with the app setting NAME, as the Functions host does."""

    def lookup(match: re.Match[str]) -> str:
        name = match[1]
        if name not in environ:
            raise HostConfigError(f"{what}: app setting {name!r} referenced as %{name}% is not set")
        return environ[name]

    return _SETTING_REFERENCE.sub(lookup, value)


def resolve_connection(name: str | None, environ: Mapping[str, str], *, what: str) -> str:
    """The storage connection string a binding's `connection` names (default `AzureWebJobsStorage`);
    like the host, `X` also finds `AzureWebJobsX`."""
    name = resolve_setting_references(name or "AzureWebJobsStorage", environ, what=what)
    for candidate in (name, f"AzureWebJobs{name}"):
        value = environ.get(candidate)
        if value:
            return value
    raise HostConfigError(f"{what}: connection setting {name!r} is not set")
