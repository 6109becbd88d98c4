"""One invocation in isolation: the host's function timeout and binding errors fail it, never the host."""

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from tools.functions_host.indexing import FunctionDescriptor, index_functions
from tools.functions_host.invocation import Invoker


def http_function(handler: Any) -> FunctionDescriptor:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.route(route="x")(handler)
    (descriptor,) = index_functions(app, {})
    return descriptor


async def no_outputs(function: FunctionDescriptor, values: Any) -> None:
    raise AssertionError("no output bindings expected")


def invoker(timeout: timedelta | None) -> Invoker:
    return Invoker(function_directory=Path("."), function_timeout=timeout, thread_count=2, output_sink=no_outputs)


def test_invocation_over_the_function_timeout_fails_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def slow(req: func.HttpRequest) -> str:
        time.sleep(1)
        return "late"

    with caplog.at_level(logging.INFO):
        outcome = asyncio.run(invoker(timedelta(milliseconds=50)).invoke(http_function(slow), lambda: None, "test"))
    assert not outcome.succeeded
    assert "Timeout value of 00:00:00 exceeded by function 'Functions.slow'" in caplog.text


def test_async_function_runs_on_the_loop_and_its_value_is_returned() -> None:
    async def quick(req: func.HttpRequest) -> str:
        await asyncio.sleep(0)
        return "pronto"

    outcome = asyncio.run(invoker(None).invoke(http_function(quick), lambda: None, "test"))
    assert outcome.succeeded
    assert outcome.value == "pronto"


def test_trigger_that_cannot_be_bound_fails_the_invocation_without_calling_the_function(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    def handler(req: func.HttpRequest) -> str:
        calls.append(req)
        return "x"

    def bad_binding() -> Any:
        raise ValueError("not base64")

    outcome = asyncio.run(invoker(None).invoke(http_function(handler), bad_binding, "test"))
    assert not outcome.succeeded
    assert calls == []
    assert "Exception binding parameter 'req'" in caplog.text
