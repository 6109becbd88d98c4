"""ManyChat never retries: an event storage cannot queue is kept in SQL and applied once storage is back; only when
SQL cannot keep it either does the answer fail (so the flow's failure branch runs)."""

from __future__ import annotations

from typing import Any

import pytest

from shared import runtime
from shared.queues import MANYCHAT_CONTACT, Queues, QueueUnavailable
from shared.services.miasalud import intake
from shared.store.miasalud_schema import miasalud_contacts, miasalud_events
from shared.work import Work
from tests.integration.miasalud.conftest import SEED_CONTACT, Leads


@pytest.fixture
def storage_down(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: Queues, queue: str, message: dict[str, Any]) -> None:
        raise QueueUnavailable(f"could not enqueue to {queue}: ServiceRequestError")

    monkeypatch.setattr(Queues, "send_grouped", refuse)


def test_an_event_storage_cannot_queue_is_held_in_sql_then_swept_and_applied_once(
    leads: Leads, storage_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = leads.post_contact(SEED_CONTACT)
    assert (answer.status, answer.body["status"]) == (202, "held")
    again = leads.post_contact(SEED_CONTACT)  # the flow's author sends it once more: still one event
    assert again.body["event_id"] == answer.body["event_id"]
    [held] = leads.rows(miasalud_events)
    assert (held.status, held.manychat_id) == ("held", "MC99999") and held.body
    assert leads.rows(miasalud_contacts) == []

    monkeypatch.undo()  # storage is back
    assert intake.requeue_held(Work.current()) == 1
    assert intake.requeue_held(Work.current()) == 0  # queued once, not at every sweep
    assert leads.drain() == 1
    [row] = leads.rows(miasalud_contacts)
    [event] = leads.rows(miasalud_events)
    assert row.first_name == "Ana"
    assert (event.status, event.body) == ("applied", None)


def test_with_storage_and_sql_both_down_the_answer_fails_so_the_flow_knows(
    leads: Leads, storage_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_database() -> Any:
        raise RuntimeError("database down")

    monkeypatch.setattr(runtime, "database", no_database)
    answer = leads.post_contact(SEED_CONTACT)
    assert (answer.status, answer.body["error"]["code"]) == (503, "event_not_saved")
    assert answer.headers.get("Retry-After") == "60"


def test_a_redelivered_held_event_already_applied_is_a_duplicate(leads: Leads) -> None:
    assert leads.post_contact(SEED_CONTACT).status == 202
    [message] = leads.queued(MANYCHAT_CONTACT)
    from shared.services.miasalud import records

    assert records.process_contact(message).outcome.value == "applied"
    assert records.process_contact(message).outcome.value == "duplicate"
    assert len(leads.rows(miasalud_events)) == 1


def test_storage_that_hangs_does_not_hold_the_answer_past_its_deadline(
    leads: Leads, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    async def hang(self: Queues, queue: str, message: dict[str, Any]) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(Queues, "send_grouped", hang)
    monkeypatch.setattr(intake, "ENQUEUE_DEADLINE_S", 0.2)
    answer = leads.post_contact(SEED_CONTACT)
    assert (answer.status, answer.body["status"]) == (202, "held")
    assert [e.status for e in leads.rows(miasalud_events)] == ["held"]
