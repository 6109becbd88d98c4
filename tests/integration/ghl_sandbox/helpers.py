"""Headers and polling shared by the sandbox tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CALENDARS = {"Version": "2021-04-15"}
CONTACTS = {"Version": "2021-07-28"}


def wait_until(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
