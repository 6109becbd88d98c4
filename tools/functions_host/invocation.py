"""Runs one function invocation like the Python worker: bindings as arguments, thread pool or event loop,
host timeout, output bindings, and the host's `Executing` / `Executed` log lines."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions._abc import TraceContext

from tools.functions_host.indexing import FunctionDescriptor

logger = logging.getLogger("Host.Function")

OutputSink = Callable[[FunctionDescriptor, Mapping[str, Any]], Awaitable[None]]


class _Out(func.Out[Any]):
    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class _TraceContext(TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _Context(func.Context):
    """What the worker passes to a `context` parameter."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local_storage = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local_storage

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> Any:
        return None


class BindingError(Exception):
    """The trigger data could not become the function's argument (e.g. a message that is not base64)."""


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    value: Any = None  # the (encoded) return value of a successful invocation


def _format_timespan(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Invoker:
    """Invokes functions; sync ones in a pool sized like the worker's (`PYTHON_THREADPOOL_THREAD_COUNT`)."""

    def __init__(
        self,
        *,
        function_directory: Path,
        function_timeout: timedelta | None,
        thread_count: int | None,
        output_sink: OutputSink,
    ) -> None:
        self._function_directory = str(function_directory)
        self._timeout = function_timeout
        self._pool = ThreadPoolExecutor(max_workers=thread_count, thread_name_prefix="function-worker")
        self._output_sink = output_sink

    async def invoke(
        self,
        function: FunctionDescriptor,
        bind_trigger: Callable[[], Any],
        reason: str,
        trigger_details: str | None = None,
        encode_result: Callable[[Any], Any] | None = None,
    ) -> Outcome:
        """`bind_trigger` builds the trigger argument and `encode_result` turns the return value into what the
        trigger needs; if either raises, the invocation fails, as a binding error does on Azure."""
        invocation_id = str(uuid.uuid4())
        logger.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", function.name, reason, invocation_id)
        if trigger_details:
            logger.info("Trigger Details: %s", trigger_details)
        outs = {output.name: _Out() for output in function.outputs if output.name != "$return"}
        arguments: dict[str, Any] = dict(outs)
        if function.wants_context:
            arguments["context"] = _Context(invocation_id, function.name, self._function_directory)
        started = time.monotonic()
        try:
            try:
                arguments[function.trigger_parameter] = bind_trigger()
            except Exception as error:
                raise BindingError(f"Exception binding parameter '{function.trigger_parameter}'") from error
            value = await self._run_with_timeout(function, arguments, invocation_id)
            if encode_result is not None:
                value = encode_result(value)
            values = {name: out.get() for name, out in outs.items()}
            if any(output.name == "$return" for output in function.outputs):
                values["$return"] = value
            if function.outputs:
                await self._output_sink(function, values)
        except Exception as error:  # noqa: BLE001 - a failing function is an outcome; logged with its traceback
            self._log_executed(function, invocation_id, started, succeeded=False, error=error)
            return Outcome(succeeded=False)
        self._log_executed(function, invocation_id, started, succeeded=True)
        return Outcome(succeeded=True, value=value)

    async def _run_with_timeout(
        self, function: FunctionDescriptor, arguments: dict[str, Any], invocation_id: str
    ) -> Any:
        if function.is_async:
            call: Awaitable[Any] = function.user_function(**arguments)
        else:
            context = contextvars.copy_context()
            call = asyncio.get_running_loop().run_in_executor(
                self._pool, context.run, functools.partial(function.user_function, **arguments)
            )
        if self._timeout is None:
            return await call
        try:
            return await asyncio.wait_for(call, self._timeout.total_seconds())
        except TimeoutError:
            # A thread cannot be killed: the real host restarts the worker; here the call is abandoned
            # and the invocation fails, so the trigger (queue, HTTP 500) sees what Azure would report.
            logger.error(
                "Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating cancellation.",
                _format_timespan(self._timeout),
                function.name,
                invocation_id,
            )
            raise

    @staticmethod
    def _log_executed(
        function: FunctionDescriptor,
        invocation_id: str,
        started: float,
        *,
        succeeded: bool,
        error: BaseException | None = None,
    ) -> None:
        duration_ms = round((time.monotonic() - started) * 1000)
        status = "Succeeded" if succeeded else "Failed"
        logger.log(
            logging.INFO if succeeded else logging.ERROR,
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
            function.name,
            status,
            invocation_id,
            duration_ms,
            exc_info=error,
        )

    def shutdown(self) -> None:
        """Stop taking work; threads still running are not waited for (the host bounds the drain itself)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
