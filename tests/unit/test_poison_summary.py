"""What `python -m shared.poison list` shows of each poisoned message: enough to find it, no patient data."""

from __future__ import annotations

import base64
import json
from typing import Any

from shared.poison import PoisonMessage


def poisoned(body: Any) -> PoisonMessage:
    text = body if isinstance(body, str) else base64.b64encode(json.dumps(body).encode()).decode()
    return PoisonMessage(id="m1", inserted_on=None, dequeue_count=5, content=text)


def test_an_outbox_message_is_shown_by_its_ids() -> None:
    message = poisoned({"op_id": 7, "appointment_id": 3, "patient": {"name": "Rosa Flores"}})
    assert message.summary() == "op_id=7, appointment_id=3"


def test_a_group_of_webhooks_from_the_intake_is_shown_as_a_group() -> None:
    assert poisoned({"group": [{"dedupe_key": "a"}, {"dedupe_key": "b"}]}).summary() == "group of 2 messages"


def test_a_message_that_is_not_base64_json_is_called_malformed() -> None:
    assert poisoned("not base64 {").summary() == "not base64 JSON (malformed)"
