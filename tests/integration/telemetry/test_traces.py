"""One appointment create is one trace: the HTTP request, the queue message and the GHL call share it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient, TextBase64DecodePolicy
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from blueprints import citas as citas_api
from blueprints import sync as sync_triggers
from shared.queues import RV3_TO_GHL
from tests.fixtures.app import App

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def tracing() -> Iterator[None]:
    """An SDK tracer provider exporting to memory (the stand-in for the OpenTelemetry collector)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    yield
    provider.shutdown()


def _deliver_queued_message(app: App) -> None:
    """Receive the message the API enqueued on Azurite and run the queue function on it, as the host does."""
    queue = QueueClient.from_connection_string(
        app.env["AzureWebJobsStorage"], RV3_TO_GHL, message_decode_policy=TextBase64DecodePolicy()
    )
    [message] = list(queue.receive_messages(max_messages=1, visibility_timeout=30))
    sync_triggers.rv3_to_ghl(
        QueueMessage(id=message.id, body=str(message.content).encode(), dequeue_count=message.dequeue_count)
    )
    queue.delete_message(message)


def test_an_appointment_create_is_one_trace_from_http_through_the_queue_to_ghl(app_with_ghl: tuple[App, Any]) -> None:
    app, sandbox = app_with_ghl
    QueueClient.from_connection_string(app.env["AzureWebJobsStorage"], RV3_TO_GHL).clear_messages()
    EXPORTER.clear()
    created = app.call(
        citas_api.citas_create,
        "POST",
        "ghl/citas",
        body={
            "title": "Consulta",
            "patient": {"name": "Lucía Ramos", "phone": "987111222"},
            "start_time": "2030-03-12T10:00:00-05:00",
            "end_time": "2030-03-12T11:00:00-05:00",
        },
    )
    assert created.status == 201
    _deliver_queued_message(app)
    assert len(sandbox.admin.state()["appointments"]) == 1

    spans = EXPORTER.get_finished_spans()
    http = [s for s in spans if s.name == "HTTP POST citas_create"]
    queue = [s for s in spans if s.name == "queue rv3-to-ghl"]
    ghl = [s for s in spans if s.name.startswith("GHL POST")]
    assert len(http) == len(queue) == 1 and ghl
    trace_ids = {s.context.trace_id for s in http + queue + ghl}
    assert len(trace_ids) == 1, "the HTTP request, queue message and GHL calls are in one trace"
    assert queue[0].parent is not None and queue[0].parent.span_id in {s.context.span_id for s in spans}
    assert created.headers["x-correlation-id"] == f"{http[0].context.trace_id:032x}"
    kinds = {s.name: s.kind for s in http + queue + ghl}
    assert kinds["HTTP POST citas_create"] == trace.SpanKind.SERVER
    assert kinds["queue rv3-to-ghl"] == trace.SpanKind.CONSUMER
    assert any(s.kind == trace.SpanKind.CLIENT for s in ghl)
