"""Test-only function app for the local host's tests: each function records what it saw under RECORD_DIR."""

import json
import os
import time
from pathlib import Path
from typing import Any

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def record(kind: str, **fields: Any) -> None:
    """One JSON line per event; a single O_APPEND write, so concurrent invocations never interleave."""
    line = json.dumps({"pid": os.getpid(), **fields}) + "\n"
    with (Path(os.environ["RECORD_DIR"]) / f"{kind}.jsonl").open("a", encoding="utf-8") as file:
        file.write(line)


@app.route(route="hello/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"hola {req.route_params['name']}")


@app.route(route="citas/{id:int}", methods=["GET"])
def get_cita(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"id": int(req.route_params["id"])}), mimetype="application/json")


@app.route(route="citas/{code}", methods=["GET"])
def get_cita_by_code(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"code": req.route_params["code"]}), mimetype="application/json")


@app.route(route="citas", methods=["POST"])
def create_cita(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse(
        json.dumps({"received": req.get_json(), "params": dict(req.params), "url": req.url}),
        status_code=201,
        mimetype="application/json",
        headers={"Location": "/api/citas/1"},
    )
    response.headers.add("X-Trace", "first")
    response.headers.add("X-Trace", "second")
    return response


@app.route(route="files/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_file(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("path", ""))


@app.route(route="admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.route(route="slow", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def slow_http(req: func.HttpRequest) -> func.HttpResponse:
    """Holds its request for `seconds` without a worker thread (async), to fill the host's outstanding requests."""
    import asyncio

    await asyncio.sleep(float(req.params.get("seconds", "1")))
    return func.HttpResponse("done")


@app.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("database password is hunter2")


@app.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="out", queue_name="%RECORD_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode("utf-8"))
    return func.HttpResponse(status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="%RECORD_QUEUE%", connection="AzureWebJobsStorage")
def record_message(msg: func.QueueMessage) -> None:
    record("record", id=msg.id, body=msg.get_body().decode("utf-8"), dequeue_count=msg.dequeue_count)


@app.queue_trigger(arg_name="msg", queue_name="%FAILING_QUEUE%", connection="AzureWebJobsStorage")
def always_fails(msg: func.QueueMessage) -> None:
    record("failing", id=msg.id, dequeue_count=msg.dequeue_count)
    raise ValueError("this handler always fails")


@app.queue_trigger(arg_name="msg", queue_name="%SLOW_QUEUE%", connection="AzureWebJobsStorage")
def slow(msg: func.QueueMessage) -> None:
    """Sleeps `sleep` seconds on its first delivery only, so a redelivered message completes at once."""
    record("slow", event="start", id=msg.id, dequeue_count=msg.dequeue_count)
    if msg.dequeue_count == 1:
        time.sleep(float(msg.get_json()["sleep"]))
    record("slow", event="done", id=msg.id, dequeue_count=msg.dequeue_count)


@app.timer_trigger(
    arg_name="timer",
    schedule="%TICK_SCHEDULE%",
    run_on_startup=os.environ.get("TICK_RUN_ON_STARTUP") == "1",
    use_monitor=os.environ.get("TICK_USE_MONITOR") == "1",
)
def tick(timer: func.TimerRequest) -> None:
    # schedule_status is on the worker's concrete TimerRequest, not on the func.TimerRequest interface.
    record("tick", past_due=timer.past_due, at=time.time(), status=getattr(timer, "schedule_status", {}))
    if os.environ.get("TICK_FAILS"):
        raise RuntimeError("tick failed on purpose")
