"""Timer triggers through the local host: NCRONTAB with seconds, fired in UTC, one host at a time."""

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from .harness import AppEnvironment, StartHost, wait_for

pytestmark = pytest.mark.azurite


def wait_for_ticks(env: AppEnvironment, count: int) -> list[dict[str, Any]]:
    wait_for(lambda: len(env.records("tick")) >= count, what=f"{count} ticks")
    return env.records("tick")


def test_every_second_timer_fires_repeatedly(app_env: AppEnvironment, start_host: StartHost) -> None:
    app_env.tick_schedule = "*/1 * * * * *"
    host = start_host(app_env)
    ticks = wait_for_ticks(app_env, 2)
    assert all(tick["past_due"] is False for tick in ticks)
    assert "Executing 'Functions.tick' (Reason='Timer fired at " in host.log()


def test_two_hosts_of_one_app_fire_each_occurrence_once(app_env: AppEnvironment, start_host: StartHost) -> None:
    app_env.tick_schedule = "*/1 * * * * *"
    start_host(app_env)
    start_host(app_env)
    ticks = wait_for_ticks(app_env, 3)
    fired_seconds = [int(tick["at"]) for tick in ticks]
    assert len(fired_seconds) == len(set(fired_seconds))
    assert len({tick["pid"] for tick in ticks}) == 1


def test_failing_timer_is_not_retried_and_runs_again_at_the_next_occurrence(
    app_env: AppEnvironment, start_host: StartHost
) -> None:
    app_env.tick_schedule = "*/1 * * * * *"
    app_env.tick_fails = True
    host = start_host(app_env)
    wait_for(lambda: host.log().count("Executed 'Functions.tick' (Failed") >= 2, what="two failed ticks")
    fired_seconds = [int(tick["at"]) for tick in app_env.records("tick")]
    assert len(fired_seconds) == len(set(fired_seconds))  # a retry would land in the same second


def test_run_on_startup_fires_once_at_start_and_then_follows_the_schedule(
    app_env: AppEnvironment, start_host: StartHost
) -> None:
    app_env.tick_run_on_startup = True
    start_host(app_env)
    (tick,) = wait_for(lambda: app_env.records("tick"), what="the start-up run")
    assert tick["past_due"] is False


def test_occurrence_missed_while_no_host_ran_fires_at_start_as_past_due(
    app_env: AppEnvironment, start_host: StartHost
) -> None:
    app_env.tick_use_monitor = True
    missed = datetime.now(UTC) - timedelta(hours=1)
    table = TableClient.from_connection_string(app_env.connection_string, "azurewebjobshosts")
    with contextlib.suppress(ResourceExistsError):
        table.create_table()
    table.upsert_entity(
        {
            "PartitionKey": app_env.host_id,
            "RowKey": "tick.Status",
            "Last": (missed - timedelta(days=365)).isoformat(),
            "Next": missed.isoformat(),
            "LastUpdated": (missed - timedelta(days=365)).isoformat(),
        }
    )
    start_host(app_env)
    (tick,) = wait_for(lambda: app_env.records("tick"), what="the past-due run")
    assert tick["past_due"] is True
    assert tick["status"]["Next"] == missed.isoformat()
    wait_for(
        lambda: table.get_entity(app_env.host_id, "tick.Status")["Next"] != missed.isoformat(),
        what="the schedule status to move on to the next occurrence",
    )
