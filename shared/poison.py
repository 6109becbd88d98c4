"""Poison messages: list, inspect and replay what the host moved to `<queue>-poison` after 5 failed deliveries.

    python -m shared.poison list   [--queue rv3-to-ghl]
    python -m shared.poison show   --id MESSAGE_ID [--queue ...]
    python -m shared.poison replay (--id MESSAGE_ID ... | --all) [--queue ...]

Replaying moves the message, unchanged, back to its queue; the worker then handles it like any delivery
(handlers are idempotent, so a message that was partly applied before failing is safe to replay).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.lazy import serial_imports
from shared.queues import APP_QUEUES, POISON_SUFFIX, grouped_messages

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueMessage

    from shared.settings import Settings

PAGE = 32
# Each message is received (so the whole queue can be walked, not only the first 32 a peek shows), held
# invisible while the tool works, then handed back at once unless it was replayed.
HOLD_S = 60


@dataclass(frozen=True)
class PoisonMessage:
    id: str
    inserted_on: datetime | None
    dequeue_count: int
    content: str  # exactly as stored (base64, as the trigger expects)

    def body(self) -> Any:
        """The decoded JSON body, or the raw text when it is not base64 JSON (that is usually why it failed)."""
        try:
            return json.loads(base64.b64decode(self.content, validate=True))
        except (binascii.Error, ValueError):
            return self.content

    def summary(self) -> str:
        body = self.body()
        group = grouped_messages(body) if isinstance(body, dict) else None
        if group is not None:
            return f"group of {len(group)} messages"
        if isinstance(body, dict):
            keys = ("op_id", "appointment_id", "type", "webhook_id", "location_id", "run_id")
            shown = ", ".join(f"{k}={body[k]}" for k in keys if k in body)
            return shown or "JSON object"
        return "not base64 JSON (malformed)"


class PoisonQueue:
    """One app queue and its poison queue, raw (no encoding policy): replays keep the bytes as they are."""

    def __init__(self, queue: QueueClient, poison: QueueClient) -> None:
        self.queue = queue
        self.poison = poison

    @classmethod
    def from_settings(cls, settings: Settings, name: str) -> PoisonQueue:
        with serial_imports:
            from azure.storage.queue import QueueClient

            from shared.queues import storage_credential

        def client(queue: str) -> QueueClient:
            conn = settings.storage_connection_string
            if conn is not None:
                return QueueClient.from_connection_string(conn, queue)
            return QueueClient(settings.storage_service_uri("queue"), queue, credential=storage_credential(settings))

        return cls(client(name), client(name + POISON_SUFFIX))

    def _received(self, hold_s: int) -> Iterator[QueueMessage]:
        with serial_imports:
            from azure.core.exceptions import ResourceNotFoundError

        try:
            yield from self.poison.receive_messages(messages_per_page=PAGE, visibility_timeout=hold_s)
        except ResourceNotFoundError:
            return

    def _hand_back(self, message: QueueMessage) -> None:
        self.poison.update_message(message.id, message.pop_receipt, visibility_timeout=0)

    def messages(self) -> list[PoisonMessage]:
        """Every message in the poison queue, left in place."""
        seen = list(self._received(HOLD_S))
        for message in seen:
            self._hand_back(message)
        return [_poison(m) for m in seen]

    def replay(self, ids: set[str] | None) -> dict[str, str]:
        """Move the messages with `ids` (all when None) back to the queue; what happened to each, by id."""
        results: dict[str, str] = {}
        for message in list(self._received(HOLD_S)):
            if ids is not None and message.id not in ids:
                self._hand_back(message)
                continue
            try:
                self.queue.send_message(message.content)
                self.poison.delete_message(message.id, message.pop_receipt)
            except Exception as exc:  # noqa: BLE001 - reported per message, the others still replay
                results[message.id] = f"failed: {type(exc).__name__}"
                continue
            results[message.id] = f"replayed to {self.queue.queue_name}"
        for missing in (ids or set()) - set(results):
            results[missing] = "not found in the poison queue"
        return results


def _poison(message: QueueMessage) -> PoisonMessage:
    return PoisonMessage(
        id=message.id,
        inserted_on=message.inserted_on,
        dequeue_count=int(message.dequeue_count or 0),
        content=str(message.content),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.poison", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["list", "show", "replay"])
    parser.add_argument("--queue", default=APP_QUEUES[0], choices=APP_QUEUES)
    parser.add_argument("--id", action="append", default=[], help="message id (repeatable)")
    parser.add_argument("--all", action="store_true", help="replay every poison message of the queue")
    args = parser.parse_args(argv)

    with serial_imports:
        from shared.settings import SettingsError, get_settings

    try:
        queue = PoisonQueue.from_settings(get_settings(), args.queue)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "list":
        found = queue.messages()
        print(f"{len(found)} message(s) in {args.queue}{POISON_SUFFIX}")
        for m in found:
            print(f"{m.id}  inserted {m.inserted_on:%Y-%m-%d %H:%M}Z  deliveries {m.dequeue_count}  {m.summary()}")
        return 0
    if args.command == "show":
        wanted = set(args.id)
        shown = [m for m in queue.messages() if m.id in wanted]
        for m in shown:
            print(json.dumps({"id": m.id, "dequeue_count": m.dequeue_count, "body": m.body()}, indent=2, default=str))
        for missing in wanted - {m.id for m in shown}:
            print(f"{missing}: not found in the poison queue")
        return 0 if shown else 1
    if not args.id and not args.all:
        parser.error("replay needs --id MESSAGE_ID or --all")
    results = queue.replay(None if args.all else set(args.id))
    for message_id, outcome in results.items():
        print(f"{message_id}: {outcome}")
    if not results:
        print(f"nothing to replay in {args.queue}{POISON_SUFFIX}")
    return 0 if all(o.startswith("replayed") for o in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
