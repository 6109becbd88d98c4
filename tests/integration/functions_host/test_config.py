"""What the host reads before starting: local.settings.json, host.json, %SETTING% references, schedules."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tools.functions_host.config import (
    HostConfig,
    HostConfigError,
    load_local_settings,
    resolve_connection,
    resolve_setting_references,
)
from tools.functions_host.timers import NcrontabSchedule


def test_local_settings_fill_the_environment_without_overriding_it(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {"A": "from-file", "B": "from-file", "N": 3}, "Host": {"LocalHttpPort": 7072}})
    )
    environ = {"A": "from-env"}
    settings = load_local_settings(tmp_path, environ)
    assert environ == {"A": "from-env", "B": "from-file", "N": "3"}
    assert settings.http_port == 7072


def test_missing_local_settings_change_nothing(tmp_path: Path) -> None:
    environ = {"A": "x"}
    load_local_settings(tmp_path, environ)
    assert environ == {"A": "x"}


def test_host_json_queue_settings_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "functionTimeout": "00:10:00",
                "extensions": {
                    "http": {"routePrefix": ""},
                    "queues": {
                        "maxPollingInterval": "00:00:02",
                        "visibilityTimeout": "00:00:30",
                        "batchSize": 8,
                    },
                },
            }
        )
    )
    config = HostConfig.load(tmp_path)
    assert config.route_prefix == ""
    assert config.function_timeout == timedelta(minutes=10)
    assert config.queues.max_polling_interval == timedelta(seconds=2)
    assert config.queues.visibility_timeout == timedelta(seconds=30)
    assert config.queues.batch_size == 8
    assert config.queues.max_dequeue_count == 5
    assert config.queues.message_encoding == "base64"


def test_without_host_json_the_real_defaults_apply(tmp_path: Path) -> None:
    config = HostConfig.load(tmp_path)
    assert config.route_prefix == "api"
    assert config.queues.batch_size == 16
    assert config.queues.max_polling_interval == timedelta(minutes=1)


def test_app_settings_override_host_json_as_on_azure(tmp_path: Path) -> None:
    queues = {"batchSize": 8, "newBatchThreshold": 4}
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"queues": queues}}))
    config = HostConfig.load(
        tmp_path,
        {
            "AzureFunctionsJobHost__extensions__queues__batchSize": "16",
            "AzureFunctionsJobHost__Extensions__Queues__NewBatchThreshold": "12",
            "AzureFunctionsJobHost__extensions__http__maxOutstandingRequests": "50",
            "UNRELATED": "1",
        },
    )
    assert (config.queues.batch_size, config.queues.new_batch_threshold) == (16, 12)
    assert config.max_outstanding_requests == 50


def test_unknown_message_encoding_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"queues": {"messageEncoding": "utf8"}}}))
    with pytest.raises(HostConfigError, match="messageEncoding"):
        HostConfig.load(tmp_path)


def test_setting_references_resolve_from_the_environment() -> None:
    assert resolve_setting_references("%QUEUE%-x", {"QUEUE": "rv3-to-ghl"}, what="t") == "rv3-to-ghl-x"
    with pytest.raises(HostConfigError, match="MISSING"):
        resolve_setting_references("%MISSING%", {}, what="t")


def test_connection_name_also_finds_the_azurewebjobs_prefixed_setting() -> None:
    assert resolve_connection("Storage", {"AzureWebJobsStorage": "cs"}, what="t") == "cs"
    assert resolve_connection(None, {"AzureWebJobsStorage": "cs"}, what="t") == "cs"


def test_ncrontab_has_seconds_first_and_runs_in_utc() -> None:
    schedule = NcrontabSchedule("0 0 6 * * *")  # 06:00 UTC = 01:00 in Lima
    lima_evening = datetime(2024, 5, 1, 20, 0, tzinfo=UTC) - timedelta(hours=0)
    assert schedule.next_after(lima_evening) == datetime(2024, 5, 2, 6, 0, tzinfo=UTC)
    assert NcrontabSchedule("*/15 * * * * *").next_after(datetime(2024, 5, 1, 0, 0, 1, tzinfo=UTC)) == datetime(
        2024, 5, 1, 0, 0, 15, tzinfo=UTC
    )


def test_ncrontab_day_of_month_and_day_of_week_must_both_match() -> None:
    friday_13th = NcrontabSchedule("0 0 0 13 * FRI").next_after(datetime(2024, 1, 1, tzinfo=UTC))
    assert friday_13th == datetime(2024, 9, 13, tzinfo=UTC)


def test_timespan_or_malformed_schedules_fail_at_start_up() -> None:
    for expression in ("00:05:00", "* * *", "0 61 * * * *"):
        with pytest.raises(HostConfigError):
            NcrontabSchedule(expression)
