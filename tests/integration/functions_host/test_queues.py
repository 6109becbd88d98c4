"""Queue triggers through the local host against Azurite: delivery, poison, encoding, crashes and shutdown."""

import base64
import contextlib
import json
import time

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from tools.azurite import Azurite

from .harness import AppEnvironment, StartHost, wait_for

pytestmark = pytest.mark.azurite


def queue(env: AppEnvironment, name: str, base64: bool = True) -> QueueClient:
    """A client for `name`; creates the queue if the host has not yet (its listeners create them)."""
    policy = TextBase64EncodePolicy() if base64 else None
    client = QueueClient.from_connection_string(env.connection_string, name, message_encode_policy=policy)
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    return client


def peek_all(client: QueueClient) -> list[str]:
    return [message.content for message in client.peek_messages(max_messages=32)]


def test_base64_message_is_decoded_for_the_function(app_env: AppEnvironment, start_host: StartHost) -> None:
    start_host(app_env)
    queue(app_env, app_env.record_queue).send_message("¡Cita 42 confirmada!")
    (record,) = wait_for(lambda: app_env.records("record"), what="the message to be processed")
    assert record["body"] == "¡Cita 42 confirmada!"
    assert record["dequeue_count"] == 1
    wait_for(lambda: not peek_all(queue(app_env, app_env.record_queue)), what="the message to be deleted")


def test_failing_message_goes_to_poison_after_exactly_five_deliveries(
    app_env: AppEnvironment, start_host: StartHost
) -> None:
    host = start_host(app_env)
    queue(app_env, app_env.failing_queue).send_message("falla siempre")
    poison = queue(app_env, f"{app_env.failing_queue}-poison")
    (content,) = wait_for(lambda: peek_all(poison), timeout=30, what="the message in the poison queue")
    assert base64.b64decode(content).decode("utf-8") == "falla siempre"  # copied in the same encoding
    assert [r["dequeue_count"] for r in app_env.records("failing")] == [1, 2, 3, 4, 5]
    assert peek_all(queue(app_env, app_env.failing_queue)) == []
    assert "Message has reached MaxDequeueCount of 5" in host.log()


def test_message_that_is_not_base64_ends_in_poison_without_running_the_function(
    app_env: AppEnvironment, start_host: StartHost
) -> None:
    host = start_host(app_env)
    queue(app_env, app_env.record_queue, base64=False).send_message("texto plano, no base64")
    poison = queue(app_env, f"{app_env.record_queue}-poison", base64=False)
    assert wait_for(lambda: peek_all(poison), timeout=30, what="poison") == ["texto plano, no base64"]
    assert app_env.records("record") == []
    assert host.log().count("Exception binding parameter 'msg'") == 5


def test_http_output_binding_message_reaches_the_queue_function(app_env: AppEnvironment, start_host: StartHost) -> None:
    host = start_host(app_env)
    assert host.request("POST", "/api/enqueue", content="desde http").status_code == 202
    (record,) = wait_for(lambda: app_env.records("record"), what="the queued message to be processed")
    assert record["body"] == "desde http"


def test_message_of_a_killed_host_comes_back_and_a_restarted_host_processes_it(
    app_env: AppEnvironment, start_host: StartHost
) -> None:
    lease = 1.0
    first = start_host(app_env, message_lease=lease)
    queue(app_env, app_env.slow_queue).send_message(json.dumps({"sleep": 60}))
    wait_for(lambda: app_env.records("slow"), what="the slow handler to start")
    time.sleep(2.5 * lease)  # well past the lease: only renewal keeps the message from a second delivery
    assert [r["event"] for r in app_env.records("slow")] == ["start"]

    first.kill()
    start_host(app_env, message_lease=lease)
    done = wait_for(
        lambda: [r for r in app_env.records("slow") if r["event"] == "done"], what="the redelivered message"
    )
    assert [r["dequeue_count"] for r in done] == [2]
    assert [r["dequeue_count"] for r in app_env.records("slow") if r["event"] == "start"] == [1, 2]
    wait_for(lambda: not peek_all(queue(app_env, app_env.slow_queue)), what="the message to be deleted")


def test_sigterm_lets_the_invocation_in_flight_finish_and_exits_0(
    app_env: AppEnvironment, start_host: StartHost
) -> None:
    host = start_host(app_env)
    queue(app_env, app_env.slow_queue).send_message(json.dumps({"sleep": 1.5}))
    wait_for(lambda: app_env.records("slow"), what="the slow handler to start")
    assert host.terminate() == 0
    assert [r["event"] for r in app_env.records("slow")] == ["start", "done"]
    assert peek_all(queue(app_env, app_env.slow_queue)) == []


def test_two_hosts_share_a_queue_and_each_message_runs_once(app_env: AppEnvironment, start_host: StartHost) -> None:
    first, second = start_host(app_env), start_host(app_env)
    client = queue(app_env, app_env.record_queue)
    bodies = {f"cita-{n}" for n in range(40)}
    for body in bodies:
        client.send_message(body)
    wait_for(lambda: len(app_env.records("record")) >= len(bodies), what="every message to be processed")
    records = app_env.records("record")
    assert sorted(r["body"] for r in records) == sorted(bodies)
    assert {r["pid"] for r in records} <= {first.process.pid, second.process.pid}  # type: ignore[union-attr]


def test_host_resumes_polling_after_storage_restarts(
    azurite: Azurite, app_env: AppEnvironment, start_host: StartHost
) -> None:
    host = start_host(app_env)
    client = queue(app_env, app_env.record_queue)
    azurite.stop()
    try:
        wait_for(lambda: "Polling queue" in host.log(), what="the host to notice storage is down")
    finally:
        azurite.start()
    client.send_message("después del reinicio")
    (record,) = wait_for(lambda: app_env.records("record"), timeout=30, what="the message after the restart")
    assert record["body"] == "después del reinicio"


def test_message_delivered_too_often_without_completing_goes_to_poison_unprocessed(
    app_env: AppEnvironment, start_host: StartHost
) -> None:
    """What protects the queue from a message that crashes its host every time it runs."""
    client = queue(app_env, app_env.record_queue)
    client.send_message("mata al host")
    for _ in range(5):  # five deliveries that never completed, as if five hosts died on it
        (message,) = client.receive_messages(visibility_timeout=30, max_messages=1)
        client.update_message(message.id, message.pop_receipt, visibility_timeout=0)
    assert message.dequeue_count == 5
    start_host(app_env)
    poison = queue(app_env, f"{app_env.record_queue}-poison")
    (content,) = wait_for(lambda: peek_all(poison), what="the message in the poison queue")
    assert base64.b64decode(content).decode("utf-8") == "mata al host"
    assert app_env.records("record") == []
