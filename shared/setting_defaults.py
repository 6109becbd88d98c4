"""Default values of the app settings, importable without pydantic so triggers can read them at index time."""

import os

RECONCILE_SCHEDULE = "0 0 6 * * *"  # 06:00 UTC = 01:00 in Lima (UTC-5 all year)
ODOO_RECONCILE_SCHEDULE = "0 30 7 * * *"  # 07:30 UTC = 01:30 in Mexico City (UTC-6 all year)
RV3_POLL_SCHEDULE = "0 */1 * * * *"
OUTBOX_SWEEP_SCHEDULE = "30 */1 * * * *"
OUTBOX_SWEEP_AFTER_S = 60.0
ODOO_SWEEP_SCHEDULE = "45 */1 * * * *"  # MiaSalud rows waiting for Odoo that no push is on; resumes a pause
ODOO_SWEEP_AFTER_S = 60.0  # a row changed more recently than this is left to its own push message
ODOO_PUSH_LEASE_S = 120.0  # a row's push lease (the fast Odoo chaos test shortens it, never below 30 s)
MANYCHAT_HELD_SWEEP_SCHEDULE = "15 */1 * * * *"  # ManyChat events SQL held while storage was down


def schedule(name: str, default: str) -> str:
    """A timer schedule from the environment (app settings), falling back to its documented default.

    Read at function-indexing time, so a missing app setting never stops the app from starting the way an
    unresolved `%SETTING%` binding expression would.
    """
    return os.environ.get(name) or default


def seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment (tests and the chaos run shorten the outbox sweep's)."""
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        return default
