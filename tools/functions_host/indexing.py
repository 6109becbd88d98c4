"""Turns the FunctionApp's registered functions and bindings into what the local host serves and polls."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.functions_host.config import HostConfigError, resolve_setting_references

AUTH_LEVELS = ("anonymous", "function", "admin")


@dataclass(frozen=True)
class HttpTrigger:
    route: str
    methods: frozenset[str] | None  # None: every method, as when the binding lists none
    auth_level: str


@dataclass(frozen=True)
class QueueTrigger:
    queue_name: str
    connection: str | None


@dataclass(frozen=True)
class TimerTrigger:
    schedule: str
    run_on_startup: bool
    use_monitor: bool | None  # None: the host decides from the schedule


Trigger = HttpTrigger | QueueTrigger | TimerTrigger


@dataclass(frozen=True)
class QueueOutput:
    """A queue output binding; `name` is a parameter of the function or `$return`."""

    name: str
    queue_name: str
    connection: str | None


@dataclass(frozen=True)
class FunctionDescriptor:
    name: str
    trigger: Trigger
    trigger_parameter: str
    outputs: tuple[QueueOutput, ...]
    user_function: Callable[..., Any]
    is_async: bool
    wants_context: bool


def load_app(app_dir: Path, module_name: str) -> Any:
    """Import `module_name` from `app_dir` the way the Python worker does and return its `app` attribute."""
    app_path = str(app_dir.resolve())
    if app_path not in sys.path:
        sys.path.insert(0, app_path)
    module = importlib.import_module(module_name)
    app = getattr(module, "app", None)
    if app is None or not hasattr(app, "get_functions"):
        raise HostConfigError(f"{module_name}.py in {app_dir} defines no FunctionApp named 'app'")
    return app


def index_functions(app: Any, environ: Mapping[str, str]) -> list[FunctionDescriptor]:
    """Read every function from `app.get_functions()`; reject what the local host cannot honour, loudly."""
    descriptors = [_describe(function, environ) for function in app.get_functions()]
    names = [descriptor.name.lower() for descriptor in descriptors]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise HostConfigError(f"function names must be unique: {duplicates}")
    return descriptors


def _describe(function: Any, environ: Mapping[str, str]) -> FunctionDescriptor:
    name = str(function.get_function_name())
    user_function = function.get_user_function()
    trigger_binding = function.get_trigger()
    if trigger_binding is None:
        raise HostConfigError(f"function {name!r} has no trigger")
    trigger_name = str(trigger_binding.get_dict_repr()["name"])
    trigger: Trigger | None = None
    outputs: list[QueueOutput] = []
    for binding in function.get_bindings_dict()["bindings"]:
        kind = str(binding["type"])
        what = f"function {name!r}, binding {binding.get('name')!r}"
        if binding["name"] == trigger_name and kind.endswith("Trigger"):
            trigger = _trigger(kind, binding, environ, what)
        elif kind == "http" and str(binding["direction"]).upper() == "OUT":
            continue  # the HTTP response is the return value
        elif kind == "queue" and str(binding["direction"]).upper() == "OUT":
            outputs.append(
                QueueOutput(
                    name=str(binding["name"]),
                    queue_name=resolve_setting_references(str(binding["queueName"]), environ, what=what).lower(),
                    connection=binding.get("connection"),
                )
            )
        else:
            raise HostConfigError(f"{what}: the local host does not support '{kind}' bindings")
    if trigger is None:
        raise HostConfigError(f"function {name!r}: trigger binding {trigger_name!r} not found")
    _check_parameters(name, user_function, {trigger_name, *(o.name for o in outputs)})
    return FunctionDescriptor(
        name=name,
        trigger=trigger,
        trigger_parameter=trigger_name,
        outputs=tuple(outputs),
        user_function=user_function,
        is_async=inspect.iscoroutinefunction(user_function),
        wants_context="context" in inspect.signature(user_function).parameters,
    )


def _trigger(kind: str, binding: Mapping[str, Any], environ: Mapping[str, str], what: str) -> Trigger:
    if kind == "httpTrigger":
        auth_level = str(binding.get("authLevel", "function")).lower()
        if auth_level not in AUTH_LEVELS:
            raise HostConfigError(f"{what}: authLevel {auth_level!r} is not one of {AUTH_LEVELS}")
        methods = binding.get("methods")
        return HttpTrigger(
            route=str(binding.get("route") or ""),
            methods=frozenset(str(m).upper() for m in methods) if methods else None,
            auth_level=auth_level,
        )
    if kind == "queueTrigger":
        return QueueTrigger(
            queue_name=resolve_setting_references(str(binding["queueName"]), environ, what=what).lower(),
            connection=binding.get("connection"),
        )
    if kind == "timerTrigger":
        return TimerTrigger(
            schedule=resolve_setting_references(str(binding["schedule"]), environ, what=what),
            run_on_startup=bool(binding.get("runOnStartup", False)),
            use_monitor=binding.get("useMonitor"),
        )
    raise HostConfigError(f"{what}: the local host does not support '{kind}' triggers")


def _check_parameters(name: str, user_function: Callable[..., Any], bound: set[str]) -> None:
    """Like the Python worker: every parameter must be bound, so a typo fails at start-up, not per call."""
    parameters = set(inspect.signature(user_function).parameters) - {"context"}
    unbound = sorted(parameters - bound)
    if unbound:
        raise HostConfigError(f"function {name!r}: parameters {unbound} have no binding")
