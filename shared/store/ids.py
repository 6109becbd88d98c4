"""The primary key of a row just inserted, the same way on every engine."""

from typing import Any

from sqlalchemy.engine import CursorResult


def inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise RuntimeError("the database returned no primary key for the inserted row")
    return int(key[0])
