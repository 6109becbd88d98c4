"""Time conversions: client and GHL timestamps to UTC, UTC to GHL's offset form, local-date windows."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_core.errors import DomainError, Issue

DEFAULT_TIMEZONE = "America/Lima"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_EXAMPLE = "2025-12-25T09:00:00-05:00"

# The product's dates (appointments, report windows, webhook stamps) lie between these years. Bounding them keeps
# every offset and day step far from datetime's year-1 / year-9999 edges, where they raise OverflowError.
EARLIEST_YEAR = 2000
LATEST_YEAR = 2100
# ASCII digits only (`\d` and str.isdigit also take "²" and "٣"); ISO-8601 / RFC 3339 as GHL and clients send it:
# `T` or a space, seconds and fractions optional, `Z` or an offset, or none (a wall time in the location's zone).
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
_EPOCH_MS = re.compile(r"[0-9]{1,15}")


class UtcRange(NamedTuple):
    """A half-open UTC interval `[start, end)`; `None` means unbounded on that side."""

    start: datetime | None
    end: datetime | None


def zone(tz: str | tzinfo) -> tzinfo:
    """The tzinfo for an IANA name (or the tzinfo itself); an unknown name is a `DomainError`."""
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DomainError(
            Issue(code="unknown_timezone", message=f"Zona horaria desconocida: {tz[:64]}", field="timezone")
        ) from exc


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is a programming error, not a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


def localize(naive: datetime, tz: str | tzinfo) -> datetime:
    """Read a wall-clock time in `tz` and return the UTC instant.

    A wall time skipped by a DST jump does not exist and is rejected rather than silently shifted;
    a repeated wall time takes its first occurrence (fold=0).
    """
    z = zone(tz)
    utc = naive.replace(tzinfo=z).astimezone(UTC)
    if utc.astimezone(z).replace(tzinfo=None) != naive.replace(tzinfo=None):
        raise DomainError(
            Issue(
                code="nonexistent_local_time",
                message=f"La hora {naive:%H:%M} del {naive:%Y-%m-%d} no existe en la zona horaria {z}",
            )
        )
    return utc


def combine_local(day: date, at: time, tz: str | tzinfo) -> datetime:
    """RV3 keeps a date and an hour in local time; this is the UTC instant they name."""
    return localize(datetime.combine(day, at), tz)


class OutOfRange(ValueError):
    """A well-formed date or time outside the years the product handles."""


def in_product_range(value: date) -> bool:
    """Whether a date (or a datetime, by its written year) lies in EARLIEST_YEAR..LATEST_YEAR."""
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


def _bounded(value: date | datetime) -> None:
    if not in_product_range(value):
        raise OutOfRange(f"year {value.year} outside {EARLIEST_YEAR}..{LATEST_YEAR}")


def parse_iso_date(text: str) -> date:
    """The one reader of calendar dates from outside: exactly YYYY-MM-DD, ASCII digits, in the product's years.
    Raises ValueError (OutOfRange for a real date outside them)."""
    text = text.strip()
    if not _ISO_DATE.fullmatch(text):
        raise ValueError("not YYYY-MM-DD")
    day = date.fromisoformat(text)
    _bounded(day)
    return day


def parse_iso_datetime(text: str) -> datetime:
    """The one reader of date-times from outside (API bodies, GHL): ISO-8601 with an offset, `Z` or none (naive:
    the caller reads it in the location's zone), ASCII digits, in the product's years. Raises ValueError
    (OutOfRange for a real instant outside them)."""
    text = text.strip()
    if not _ISO_DATETIME.fullmatch(text):
        raise ValueError("not an ISO-8601 date-time")
    moment = datetime.fromisoformat(text)
    # The written year first (a day of margin either side), so the conversion to UTC cannot overflow; then the
    # instant itself (2000-01-01T00:00Z is 1999-12-31 in Lima).
    if not EARLIEST_YEAR - 1 <= moment.year <= LATEST_YEAR + 1:
        raise OutOfRange(f"year {moment.year} outside {EARLIEST_YEAR}..{LATEST_YEAR}")
    _bounded(moment if moment.utcoffset() is None else moment.astimezone(UTC))
    return moment


def _invalid_datetime(field: str, detail: str) -> DomainError:
    return DomainError(
        Issue(
            code="invalid_datetime",
            message=f"Fecha y hora inválida en {field}: {detail}. Use ISO-8601, por ejemplo {_ISO_EXAMPLE}",
            field=field,
        )
    )


def parse_client_datetime(value: str | datetime, tz: str | tzinfo, *, field: str = "start_time") -> datetime:
    """Client input to UTC: an offset is honoured, a naive time is read in the location's timezone."""
    if isinstance(value, datetime):
        parsed = value
        if not in_product_range(parsed):
            raise _invalid_datetime(field, f"el año debe estar entre {EARLIEST_YEAR} y {LATEST_YEAR}")
    else:
        text = value.strip()
        if not text:
            raise _invalid_datetime(field, "está vacía")
        if _ISO_DATE.fullmatch(text):
            raise _invalid_datetime(field, "falta la hora")
        try:
            parsed = parse_iso_datetime(text)
        except OutOfRange:
            raise _invalid_datetime(field, f"el año debe estar entre {EARLIEST_YEAR} y {LATEST_YEAR}") from None
        except ValueError:
            raise _invalid_datetime(field, "formato no reconocido") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return localize(parsed, tz)
    return parsed.astimezone(UTC)


def parse_ghl_time(raw: str | int | float, tz: str | tzinfo) -> datetime:
    """Any time form GHL sends, to UTC.

    GHL uses ISO-8601 with an offset, `Z` or `.000Z`; the contact-appointments endpoint sends a naive
    "2021-07-16 11:00:00" (read in the location's timezone); query-style values are epoch milliseconds.
    """
    if isinstance(raw, bool):
        raise ValueError("not a time")
    if isinstance(raw, int | float):
        return _from_epoch_ms(raw)
    text = raw.strip()
    if _EPOCH_MS.fullmatch(text):
        return _from_epoch_ms(int(text))
    parsed = parse_iso_datetime(text)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return localize(parsed, tz)
    return parsed.astimezone(UTC)


def _from_epoch_ms(value: int | float) -> datetime:
    try:
        moment = _EPOCH + timedelta(milliseconds=value)
    except (OverflowError, ValueError):  # ValueError: NaN
        raise OutOfRange("epoch milliseconds out of range") from None
    _bounded(moment)
    return moment


def to_ghl_iso(instant: datetime, tz: str | tzinfo) -> str:
    """The form GHL takes: local wall time with its offset, e.g. "2025-12-25T14:00:00-05:00"."""
    return as_utc(instant).astimezone(zone(tz)).isoformat(timespec="seconds")


def epoch_ms(instant: datetime) -> int:
    """Epoch milliseconds, as `GET /calendars/events` wants its window."""
    return (as_utc(instant) - _EPOCH) // timedelta(milliseconds=1)


def format_local_hhmm(instant: datetime, tz: str | tzinfo) -> str:
    """The local wall time as clinic staff read it: "HH:MM" in the location's timezone."""
    return as_utc(instant).astimezone(zone(tz)).strftime("%H:%M")


def parse_query_date(raw: str, *, field: str) -> date:
    """A `desde`/`hasta` query value (YYYY-MM-DD) to a date, with a Spanish error for staff."""
    try:
        return parse_iso_date(raw)
    except ValueError:
        raise DomainError(
            Issue(code="invalid_date", message=f"Fecha inválida en {field}: use AAAA-MM-DD", field=field)
        ) from None


def local_day_bounds(day: date, tz: str | tzinfo) -> UtcRange:
    """The UTC interval covering one local calendar day.

    Some zones skip midnight on DST days; the day then starts at its first existing instant, which is
    what a fold=0 conversion of the skipped midnight yields.
    """
    z = zone(tz)
    start = datetime.combine(day, time.min, tzinfo=z).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=z).astimezone(UTC)
    return UtcRange(start, end)


def local_bound(value: date | datetime, tz: str | tzinfo, *, end: bool) -> datetime:
    """One side of a window as UTC: a date is a whole local day (its end when `end`, so an end date is included),
    a date-time without offset is read in `tz`."""
    if isinstance(value, datetime):
        return as_utc(value) if value.utcoffset() is not None else localize(value, tz)
    bounds = local_day_bounds(value, tz)
    assert bounds.start is not None and bounds.end is not None
    return bounds.end if end else bounds.start


def local_date_range(desde: date | None, hasta: date | None, tz: str | tzinfo) -> UtcRange:
    """`desde`..`hasta` (both inclusive local dates) as a half-open UTC range."""
    if desde is not None and hasta is not None and desde > hasta:
        raise DomainError(
            Issue(
                code="invalid_date_range",
                message="La fecha 'desde' no puede ser posterior a la fecha 'hasta'",
                field="desde",
            )
        )
    start = local_day_bounds(desde, tz).start if desde is not None else None
    end = local_day_bounds(hasta, tz).end if hasta is not None else None
    return UtcRange(start, end)
