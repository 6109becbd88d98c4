"""Time conversions between client input, storage (UTC) and GHL."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_core.errors import DomainError
from sync_core.times import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    OutOfRange,
    combine_local,
    epoch_ms,
    format_local_hhmm,
    local_bound,
    local_date_range,
    local_day_bounds,
    localize,
    parse_client_datetime,
    parse_ghl_time,
    parse_iso_date,
    parse_iso_datetime,
    parse_query_date,
    to_ghl_iso,
    zone,
)

LIMA = "America/Lima"


def test_client_time_with_offset_is_stored_as_the_same_instant_in_utc() -> None:
    assert parse_client_datetime("2025-12-25T09:00:00-05:00", LIMA) == datetime(2025, 12, 25, 14, tzinfo=UTC)
    assert parse_client_datetime("2025-12-25T14:00:00Z", LIMA) == datetime(2025, 12, 25, 14, tzinfo=UTC)


def test_naive_client_time_is_read_in_the_location_timezone() -> None:
    assert parse_client_datetime("2025-12-25T09:00:00", LIMA) == datetime(2025, 12, 25, 14, tzinfo=UTC)
    assert parse_client_datetime("2025-12-25 09:00", "America/New_York") == datetime(2025, 12, 25, 14, tzinfo=UTC)


def test_naive_datetime_object_is_read_in_the_location_timezone() -> None:
    assert parse_client_datetime(datetime(2025, 7, 1, 8, 30), LIMA) == datetime(2025, 7, 1, 13, 30, tzinfo=UTC)


def test_lima_has_no_daylight_saving_so_january_and_july_share_the_offset() -> None:
    january = parse_client_datetime("2025-01-15T10:00:00", LIMA)
    july = parse_client_datetime("2025-07-15T10:00:00", LIMA)
    assert (january.hour, july.hour) == (15, 15)
    assert to_ghl_iso(january, LIMA).endswith("-05:00")
    assert to_ghl_iso(july, LIMA).endswith("-05:00")


@pytest.mark.parametrize("garbage", ["mañana a las 9", "2025-13-40T10:00", "", "   ", "10:00"])
def test_unreadable_client_time_is_rejected_with_a_spanish_message(garbage: str) -> None:
    with pytest.raises(DomainError) as caught:
        parse_client_datetime(garbage, LIMA, field="start_time")
    assert caught.value.code == "invalid_datetime"
    assert caught.value.issue.field == "start_time"
    assert "Fecha y hora inválida en start_time" in caught.value.issue.message


def test_a_date_without_time_is_rejected_rather_than_read_as_midnight() -> None:
    with pytest.raises(DomainError) as caught:
        parse_client_datetime("2025-12-25", LIMA)
    assert "falta la hora" in caught.value.issue.message


def test_a_wall_time_skipped_by_a_dst_jump_is_rejected() -> None:
    with pytest.raises(DomainError) as caught:
        parse_client_datetime("2025-03-09T02:30:00", "America/New_York")
    assert caught.value.code == "nonexistent_local_time"


def test_unknown_timezone_is_a_clear_error() -> None:
    with pytest.raises(DomainError) as caught:
        zone("America/Atlantis")
    assert caught.value.code == "unknown_timezone"
    assert "Zona horaria desconocida" in caught.value.issue.message


def test_ghl_gets_local_wall_time_with_its_offset() -> None:
    assert to_ghl_iso(datetime(2025, 12, 25, 14, tzinfo=UTC), LIMA) == "2025-12-25T09:00:00-05:00"


def test_ghl_iso_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_ghl_iso(datetime(2025, 12, 25, 14), LIMA)


@pytest.mark.parametrize(
    "raw",
    [
        "2025-12-25T09:00:00-05:00",
        "2025-12-25T14:00:00Z",
        "2025-12-25T14:00:00.000Z",
        "2025-12-25T19:30:00+05:30",
        "2025-12-25 09:00:00",
        "1766671200000",
        1766671200000,
    ],
)
def test_every_time_form_ghl_sends_reads_as_the_same_instant(raw: str | int) -> None:
    assert parse_ghl_time(raw, LIMA) == datetime(2025, 12, 25, 14, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["not a time", "2025-99-99", ""])
def test_unreadable_ghl_time_raises_value_error(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_ghl_time(raw, LIMA)


def test_epoch_ms_is_what_the_events_endpoint_expects() -> None:
    assert epoch_ms(datetime(2023, 4, 1, 18, 30, tzinfo=UTC)) == 1680373800000


def test_local_hhmm_is_what_staff_read() -> None:
    assert format_local_hhmm(datetime(2025, 12, 25, 19, 5, tzinfo=UTC), LIMA) == "14:05"


def test_rv3_date_and_hour_combine_into_a_utc_instant() -> None:
    assert combine_local(date(2025, 12, 25), time(9, 0), LIMA) == datetime(2025, 12, 25, 14, tzinfo=UTC)


def test_desde_hasta_cover_whole_local_days() -> None:
    window = local_date_range(date(2025, 12, 1), date(2025, 12, 31), LIMA)
    assert window.start == datetime(2025, 12, 1, 5, tzinfo=UTC)
    assert window.end == datetime(2026, 1, 1, 5, tzinfo=UTC)


def test_an_open_side_of_the_date_range_stays_unbounded() -> None:
    assert local_date_range(None, date(2025, 12, 31), LIMA).start is None
    assert local_date_range(date(2025, 12, 1), None, LIMA).end is None


def test_a_window_side_is_a_whole_local_day_or_the_instant_given() -> None:
    assert local_bound(date(2025, 12, 1), LIMA, end=False) == datetime(2025, 12, 1, 5, tzinfo=UTC)
    assert local_bound(date(2025, 12, 1), LIMA, end=True) == datetime(2025, 12, 2, 5, tzinfo=UTC)
    assert local_bound(datetime(2025, 12, 1, 8), LIMA, end=True) == datetime(2025, 12, 1, 13, tzinfo=UTC)
    assert local_bound(datetime(2025, 12, 1, 8, tzinfo=UTC), LIMA, end=False) == datetime(2025, 12, 1, 8, tzinfo=UTC)


def test_desde_after_hasta_is_rejected() -> None:
    with pytest.raises(DomainError) as caught:
        local_date_range(date(2025, 12, 31), date(2025, 12, 1), LIMA)
    assert caught.value.code == "invalid_date_range"


def test_a_day_whose_midnight_is_skipped_starts_at_its_first_instant() -> None:
    # Santiago de Chile springs forward at midnight: 2025-09-07 starts at 01:00 local (-03:00).
    bounds = local_day_bounds(date(2025, 9, 7), "America/Santiago")
    assert bounds.start == datetime(2025, 9, 7, 4, tzinfo=UTC)


def test_query_date_must_be_yyyy_mm_dd() -> None:
    assert parse_query_date(" 2025-12-01 ", field="desde") == date(2025, 12, 1)
    with pytest.raises(DomainError) as caught:
        parse_query_date("01/12/2025", field="desde")
    assert caught.value.issue.message == "Fecha inválida en desde: use AAAA-MM-DD"


# Lima last observed DST in 1994; from 2000 on it is UTC−5 all year.
aware_instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda dt: dt.replace(microsecond=0))


@given(instant=aware_instants, tz=st.sampled_from([LIMA, "UTC", "Asia/Kolkata", "America/Bogota"]))
def test_utc_to_ghl_and_back_is_the_same_instant(instant: datetime, tz: str) -> None:
    assert parse_ghl_time(to_ghl_iso(instant, tz), tz) == instant


@given(instant=aware_instants)
def test_lima_wall_time_round_trips_through_naive_input(instant: datetime) -> None:
    wall = instant.astimezone(zone(LIMA)).replace(tzinfo=None)
    assert localize(wall, LIMA) == instant
    assert wall == (instant.astimezone(timezone(timedelta(hours=-5)))).replace(tzinfo=None)


@given(instant=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_epoch_ms_round_trips_to_the_millisecond(instant: datetime) -> None:
    truncated = instant.replace(microsecond=instant.microsecond // 1000 * 1000)
    assert parse_ghl_time(epoch_ms(instant), LIMA) == truncated


# --- the one reader of dates and date-times from outside, and the product's years ---------------------------------

offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.text(max_size=40) | st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?[+-Z0-9:]*"))
def test_any_text_is_a_date_time_in_the_product_years_or_a_value_error(text: str) -> None:
    try:
        moment = parse_iso_datetime(text)
    except ValueError:
        return
    instant = moment if moment.utcoffset() is None else moment.astimezone(UTC)
    assert EARLIEST_YEAR <= instant.year <= LATEST_YEAR
    as_utc_is_safe = moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC) + timedelta(days=2)
    assert as_utc_is_safe.year <= LATEST_YEAR + 1


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), offsets)
def test_every_instant_with_any_offset_is_read_back_or_refused_as_out_of_range(naive: datetime, tz: timezone) -> None:
    text = naive.replace(tzinfo=tz).isoformat()
    instant_year = (naive - tz.utcoffset(None)).year
    if EARLIEST_YEAR <= instant_year <= LATEST_YEAR and EARLIEST_YEAR - 1 <= naive.year <= LATEST_YEAR + 1:
        assert parse_iso_datetime(text) == naive.replace(tzinfo=tz)
    else:
        with pytest.raises(OutOfRange):
            parse_iso_datetime(text)


@given(st.dates())
def test_a_date_is_read_only_within_the_product_years(day: date) -> None:
    if EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        assert parse_iso_date(day.isoformat()) == day
    else:
        with pytest.raises(OutOfRange):
            parse_iso_date(day.isoformat())


@pytest.mark.parametrize("text", ["２０３０-03-12", "2030-٠٣-12", "20300312", "2030-W11-2", "2030-03-12T10:00"])
def test_only_ascii_yyyy_mm_dd_is_a_date(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso_date(text)


@given(st.one_of(st.integers(), st.floats(), st.text(alphabet="0123456789", max_size=40)))
def test_a_ghl_time_is_utc_in_the_product_years_or_a_value_error(raw: int | float | str) -> None:
    try:
        moment = parse_ghl_time(raw, LIMA)
    except ValueError:
        return
    assert moment.tzinfo is UTC and EARLIEST_YEAR <= moment.year <= LATEST_YEAR
