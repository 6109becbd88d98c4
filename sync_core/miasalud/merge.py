"""A lead's record as the newest word on each field: events merged field by field in their contact's order."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync_core.miasalud.events import Stamp

# Each field remembers the stamp (`events.Stamp`: ManyChat's `datetime_actual`, then the body's hash) of the event
# that set it. An event sets a field only when its stamp is later than that one, so an older event arriving late
# never overwrites what a newer one set, yet still fills a field the newer one left unfilled; a repeated delivery
# has the same stamp and changes nothing. The outcome is the same in any delivery order (the stamps are totally
# ordered), which is what lets several workers apply one contact's events without a lock held across them.


@dataclass(frozen=True)
class Merged:
    """What applying an event does to a record: the fields it wins, and every field's stamp after it."""

    values: dict[str, Any]
    clocks: dict[str, Stamp]

    @property
    def changed(self) -> bool:
        return bool(self.values)


def merge(clocks: Mapping[str, Stamp], fields: Mapping[str, Any], stamp: Stamp) -> Merged:
    """Apply `fields` (what an event stamped `stamp` sets) to a record whose fields carry `clocks`."""
    won = {name: value for name, value in fields.items() if name not in clocks or clocks[name] < stamp}
    return Merged(values=won, clocks={**clocks, **dict.fromkeys(won, stamp)})


def edited(record: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """What a staff edit sets on `record`: the fields whose wanted value differs from the record's (a field the
    record lacks reads as None). Merged with the edit's stamp, only these outrank older events: a field staff left
    as it was keeps the stamp of the event that set it, and an event newer than that one, even if older than the
    edit, still reaches it."""
    return {name: value for name, value in wanted.items() if record.get(name) != value}


def newest(clocks: Mapping[str, Stamp]) -> datetime | None:
    """When the newest event that set something on the record happened."""
    return max((stamp.at for stamp in clocks.values()), default=None)


def encode_clocks(clocks: Mapping[str, Stamp]) -> str:
    return json.dumps({name: [stamp.at.isoformat(), stamp.key] for name, stamp in sorted(clocks.items())})


def decode_clocks(text: str | None) -> dict[str, Stamp]:
    """The stamps stored with a record (`encode_clocks`); none for a record no event has touched yet."""
    if not text:
        return {}
    return {name: Stamp(datetime.fromisoformat(at), key) for name, (at, key) in json.loads(text).items()}
