"""Which GHL `python -m tools.dev` points the app at: the one configured when it is complete, else the sandbox."""

import json
from pathlib import Path

import pytest

from tools.dev import ServiceChoice, choose_ghl

SANDBOX_PORT = 8090
EXAMPLE = Path(__file__).resolve().parents[3] / "local.settings.json.example"
TOKEN = {"GHL_PRIVATE_TOKEN": "pit-secret-token", "GHL_LOCATION_ID": "loc_clinic"}
OAUTH = {"GHL_CLIENT_ID": "client-id", "GHL_CLIENT_SECRET": "client-secret"}
FALLBACK = "using the built-in GHL sandbox instead"


def choose(environ: dict[str, str] | None = None, values: dict[str, str] | None = None) -> ServiceChoice:
    return choose_ghl(environ or {}, values or {}, SANDBOX_PORT)


def test_a_local_http_stand_in_with_a_token_is_used_as_configured() -> None:
    assert choose({"GHL_BASE_URL": "http://127.0.0.1:9000", **TOKEN}) == ServiceChoice("http://127.0.0.1:9000")


def test_ghl_itself_with_an_oauth_client_in_local_settings_is_used_as_configured() -> None:
    values = {"GHL_BASE_URL": "https://services.leadconnectorhq.com", **OAUTH}
    assert choose(values=values) == ServiceChoice("https://services.leadconnectorhq.com")


def test_nothing_configured_uses_the_sandbox_without_a_warning() -> None:
    assert choose() == ServiceChoice(None)


def test_the_example_settings_point_at_the_sandbox_this_runner_starts() -> None:
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))["Values"]
    assert choose(values={k: v for k, v in example.items() if v}) == ServiceChoice(None)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8090", "http://localhost:8090", "http://127.0.0.1:8090/"])
def test_the_sandbox_address_is_the_sandbox_whatever_token_is_set(url: str) -> None:
    assert choose({"GHL_BASE_URL": url, **TOKEN}) == ServiceChoice(None)


def test_a_stand_in_on_the_default_port_is_used_when_the_sandbox_runs_on_another() -> None:
    choice = choose_ghl({"GHL_BASE_URL": "http://127.0.0.1:8090", **TOKEN}, {}, sandbox_port=8091)
    assert choice == ServiceChoice("http://127.0.0.1:8090")


def test_a_url_without_credentials_falls_back_to_the_sandbox_naming_both_ways_to_complete_it() -> None:
    assert choose({"GHL_BASE_URL": "http://127.0.0.1:9000"}) == ServiceChoice(
        None,
        "GHL_BASE_URL is set but GHL_PRIVATE_TOKEN with GHL_LOCATION_ID (or GHL_CLIENT_ID with GHL_CLIENT_SECRET) "
        f"is not: {FALLBACK}; set it to use yours",
    )


def test_a_token_without_its_location_falls_back_to_the_sandbox_naming_the_location() -> None:
    environ = {"GHL_BASE_URL": "http://127.0.0.1:9000", "GHL_PRIVATE_TOKEN": "pit-secret-token"}
    assert choose(environ).warning == (
        f"GHL_BASE_URL and GHL_PRIVATE_TOKEN are set but GHL_LOCATION_ID is not: {FALLBACK}; set it to use yours"
    )


def test_credentials_without_a_url_fall_back_to_the_sandbox_naming_the_url() -> None:
    assert choose(values=OAUTH) == ServiceChoice(
        None, f"GHL_CLIENT_ID and GHL_CLIENT_SECRET are set but GHL_BASE_URL is not: {FALLBACK}; set it to use yours"
    )


def test_a_lone_token_names_everything_it_lacks() -> None:
    assert choose({"GHL_PRIVATE_TOKEN": "pit-secret-token"}).warning == (
        f"GHL_PRIVATE_TOKEN is set but GHL_BASE_URL and GHL_LOCATION_ID are not: {FALLBACK}; set them to use yours"
    )


def test_the_environment_completes_what_local_settings_begin() -> None:
    values = {"GHL_BASE_URL": "http://127.0.0.1:9000", "GHL_LOCATION_ID": "loc_clinic"}
    assert choose({"GHL_PRIVATE_TOKEN": "pit-secret-token"}, values) == ServiceChoice("http://127.0.0.1:9000")


def test_an_empty_environment_variable_hides_local_settings_as_the_host_does() -> None:
    values = {"GHL_BASE_URL": "http://127.0.0.1:9000", **TOKEN}
    choice = choose({"GHL_PRIVATE_TOKEN": ""}, values)
    assert choice.url is None
    assert choice.warning and "GHL_PRIVATE_TOKEN is not" in choice.warning


@pytest.mark.parametrize(
    "environ",
    [
        {"GHL_BASE_URL": "http://127.0.0.1:9000", "GHL_PRIVATE_TOKEN": "pit-secret-token"},
        {"GHL_BASE_URL": "http://127.0.0.1:9000", "GHL_CLIENT_SECRET": "client-secret"},
        {"GHL_PRIVATE_TOKEN": "pit-secret-token", "GHL_LOCATION_ID": "loc_clinic"},
    ],
)
def test_a_warning_names_settings_never_their_values(environ: dict[str, str]) -> None:
    warning = choose(environ).warning
    assert warning and FALLBACK in warning
    assert not any(value in warning for name, value in environ.items() if name != "GHL_BASE_URL")
