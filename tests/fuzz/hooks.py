"""schemathesis hooks for this API (loaded through schemathesis.toml): what the OpenAPI document says but
schemathesis cannot draw on its own."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import schemathesis
from hypothesis import strategies as st

from sync_core.times import EARLIEST_YEAR, LATEST_YEAR

# The document bounds every date and date-time to the product's years (a pattern on the year); drawing them from
# the whole calendar would take thousands of tries per valid value.
_DAYS = st.dates(min_value=date(EARLIEST_YEAR, 1, 2), max_value=date(LATEST_YEAR, 12, 30))
_OFFSETS = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))

schemathesis.openapi.format("date", _DAYS.map(date.isoformat))
schemathesis.openapi.format(
    "date-time",
    st.builds(
        lambda day, seconds, tz: (
            (datetime.combine(day, datetime.min.time(), UTC) + timedelta(seconds=seconds)).astimezone(tz).isoformat()
        ),
        _DAYS,
        st.integers(min_value=0, max_value=86_399),
        _OFFSETS,
    ),
)
