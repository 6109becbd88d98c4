"""The field-ordered merge as a protocol: any order, any repeats, the same record — the newest word per field; and a
staff edit among the events, whose stamp only what it changes takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_core.miasalud.events import Stamp
from sync_core.miasalud.merge import decode_clocks, edited, encode_clocks, merge, newest

FIELDS = ("first_name", "phone", "last_state")
T0 = datetime(2025, 6, 10, tzinfo=UTC)

events = st.lists(
    st.tuples(
        st.integers(0, 50).map(lambda m: T0 + timedelta(minutes=m)),  # ties on purpose: the key orders them
        st.text("abc", min_size=1, max_size=3),
        st.dictionaries(st.sampled_from(FIELDS), st.text("xyz", min_size=1, max_size=2), max_size=3),
    ),
    max_size=12,
)


def apply(sequence: list[tuple[datetime, str, dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, Stamp]]:
    record: dict[str, Any] = {}
    clocks: dict[str, Stamp] = {}
    for at, key, fields in sequence:
        merged = merge(decode_clocks(encode_clocks(clocks)), fields, Stamp(at, key))  # through storage, as SQL does
        record.update(merged.values)
        clocks = merged.clocks
    return record, clocks


def model(sequence: list[tuple[datetime, str, dict[str, Any]]]) -> dict[str, Any]:
    """Per field, the value of the latest (time, key) event that set it."""
    record: dict[str, Any] = {}
    for _, _, fields in sorted(sequence, key=lambda e: (e[0], e[1])):
        record.update(fields)
    return record


@settings(max_examples=300, deadline=None)
@given(events, st.randoms(use_true_random=False), st.integers(0, 4))
def test_any_delivery_order_with_repeats_gives_the_newest_per_field(
    sent: list[tuple[datetime, str, dict[str, Any]]], rng: Any, repeats: int
) -> None:
    # One body per (time, key): the key is the body's hash, so the same stamp is always the same fields.
    unique = list({(at, key): (at, key, fields) for at, key, fields in sent}.values())
    deliveries = unique + [rng.choice(unique) for _ in range(repeats) if unique]
    rng.shuffle(deliveries)
    record, clocks = apply(deliveries)
    assert record == model(unique)
    assert newest(clocks) == max((at for at, _, fields in unique if fields), default=None)


def test_a_repeated_event_changes_nothing() -> None:
    stamp = Stamp(T0, "k1")
    first = merge({}, {"first_name": "Ana"}, stamp)
    assert not merge(first.clocks, {"first_name": "Ana"}, stamp).changed


def test_an_older_event_fills_only_what_the_newer_left_unset() -> None:
    newer = merge({}, {"last_state": "Cita"}, Stamp(T0 + timedelta(hours=1), "k2"))
    older = merge(newer.clocks, {"last_state": "Nuevo", "phone": "+525512345678"}, Stamp(T0, "k1"))
    assert older.values == {"phone": "+525512345678"}


def test_a_staff_edit_is_the_fields_it_changes() -> None:
    record = {"first_name": "Ana", "last_name": "García", "phone": None}
    wanted = {"first_name": "Ana", "last_name": "García Ruiz", "phone": None, "channel_id": None}
    assert edited(record, wanted) == {"last_name": "García Ruiz"}
    assert edited({}, {"manychat_id": "MC1", "first_name": None}) == {"manychat_id": "MC1"}


def test_an_event_older_than_a_staff_edit_still_reaches_what_the_edit_left_alone() -> None:
    t1, t2, t3 = (Stamp(T0 + timedelta(hours=hours), f"k{hours}") for hours in (1, 2, 3))
    clocks = {"first_name": t1, "last_name": t1}
    fix = edited({"first_name": "Ana", "last_name": "Garcia"}, {"first_name": "Ana", "last_name": "García"})
    after_edit = merge(clocks, fix, t3).clocks
    late = merge(after_edit, {"first_name": "Anita", "last_name": "Garcí"}, t2)
    assert late.values == {"first_name": "Anita"}
