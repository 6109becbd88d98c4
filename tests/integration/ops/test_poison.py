"""The poison command on a real Azurite: operators see what failed for good and put it back in line."""

from __future__ import annotations

import base64
import json

import pytest
from azure.storage.queue import QueueClient

from shared import poison, runtime
from shared.queues import RV3_TO_GHL
from tests.fixtures.app import App


def _poison_client(app: App) -> QueueClient:
    return QueueClient.from_connection_string(app.env["AzureWebJobsStorage"], RV3_TO_GHL + "-poison")


def _main_client(app: App) -> QueueClient:
    return QueueClient.from_connection_string(app.env["AzureWebJobsStorage"], RV3_TO_GHL)


def _park(app: App, body: object) -> str:
    """A message as the host leaves it in the poison queue: base64 content, unchanged."""
    content = base64.b64encode(json.dumps(body).encode()).decode() if not isinstance(body, str) else body
    return str(_poison_client(app).send_message(content).id)


@pytest.fixture
def queues(app: App) -> App:
    _poison_client(app).clear_messages()
    _main_client(app).clear_messages()
    return app


def test_list_shows_each_poison_message_with_its_key_ids(queues: App, capsys: pytest.CaptureFixture[str]) -> None:
    good = _park(queues, {"op_id": "op-1", "appointment_id": 7})
    bad = _park(queues, "not base64 at all!")
    assert poison.main(["list", "--queue", RV3_TO_GHL]) == 0
    out = capsys.readouterr().out
    assert "2 message(s) in rv3-to-ghl-poison" in out
    assert f"{good}" in out and "op_id=op-1, appointment_id=7" in out
    assert f"{bad}" in out and "malformed" in out


def test_show_prints_the_decoded_body(queues: App, capsys: pytest.CaptureFixture[str]) -> None:
    message_id = _park(queues, {"op_id": "op-2", "appointment_id": 8})
    assert poison.main(["show", "--id", message_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["body"] == {"op_id": "op-2", "appointment_id": 8}


def test_replay_by_id_moves_only_that_message_back_unchanged(queues: App, capsys: pytest.CaptureFixture[str]) -> None:
    first = _park(queues, {"op_id": "op-3", "appointment_id": 9})
    second = _park(queues, {"op_id": "op-4", "appointment_id": 10})
    assert poison.main(["replay", "--id", first, "--id", "no-such-id"]) == 1
    out = capsys.readouterr().out
    assert f"{first}: replayed to rv3-to-ghl" in out
    assert "no-such-id: not found in the poison queue" in out
    [back] = _main_client(queues).peek_messages(max_messages=5)
    assert json.loads(base64.b64decode(back.content)) == {"op_id": "op-3", "appointment_id": 9}
    remaining = poison.PoisonQueue.from_settings(runtime.settings(), RV3_TO_GHL).messages()
    assert [m.id for m in remaining] == [second]


def test_replay_all_empties_the_poison_queue(queues: App, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(3):
        _park(queues, {"op_id": f"op-{n}", "appointment_id": n})
    assert poison.main(["replay", "--all"]) == 0
    assert capsys.readouterr().out.count("replayed to rv3-to-ghl") == 3
    assert len(_main_client(queues).peek_messages(max_messages=32)) == 3
