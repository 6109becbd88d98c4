"""HTTP through the local host: routes, parameters, methods, keys and errors as the real host serves them."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tools.azurite import Azurite

from .harness import FUNCTION_KEY, MASTER_KEY, AppEnvironment, HostProcess, StartHost

pytestmark = pytest.mark.azurite


@pytest.fixture(scope="module")
def host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    work = tmp_path_factory.mktemp("http-host")
    (work / "records").mkdir()
    process = HostProcess(AppEnvironment(azurite.connection_string, work / "records"), work / "host.log")
    process.start()
    yield process
    process.ensure_stopped()


def with_key(key: str = FUNCTION_KEY) -> dict[str, str]:
    return {"x-functions-key": key}


def test_route_parameter_reaches_the_function(host: HostProcess) -> None:
    response = host.get("/api/hello/ana")
    assert response.status_code == 200
    assert response.text == "hola ana"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_trailing_slash_matches_the_same_route(host: HostProcess) -> None:
    assert host.get("/api/hello/ana/").text == "hola ana"
    assert host.get("/api/citas/7/", headers=with_key()).json() == {"id": 7}


def test_int_constraint_takes_numbers_and_other_values_reach_the_plain_route(host: HostProcess) -> None:
    assert host.get("/api/citas/42", headers=with_key()).json() == {"id": 42}
    assert host.get("/api/citas/abc", headers=with_key()).json() == {"code": "abc"}
    assert host.get("/api/citas/99999999999", headers=with_key()).json() == {"code": "99999999999"}


def test_literal_segments_match_case_insensitively_and_values_are_url_decoded(host: HostProcess) -> None:
    assert host.get("/API/Hello/Jos%C3%A9").text == "hola José"


def test_catch_all_route_receives_the_rest_of_the_path(host: HostProcess) -> None:
    assert host.get("/api/files/2024/informes/cita%201.pdf").text == "2024/informes/cita 1.pdf"
    assert host.get("/api/files").status_code == 200


def test_function_route_without_key_is_401_with_empty_body(host: HostProcess) -> None:
    response = host.get("/api/citas/42")
    assert response.status_code == 401
    assert response.content == b""


@pytest.mark.parametrize(
    "request_kwargs",
    [{"headers": {"x-functions-key": FUNCTION_KEY}}, {"params": {"code": FUNCTION_KEY}}],
    ids=["x-functions-key header", "code query parameter"],
)
def test_function_key_is_accepted_from_header_or_code(host: HostProcess, request_kwargs: dict[str, object]) -> None:
    assert host.get("/api/citas/42", **request_kwargs).status_code == 200


def test_wrong_function_key_is_401(host: HostProcess) -> None:
    assert host.get("/api/citas/42", headers=with_key("not-the-key")).status_code == 401
    assert host.get("/api/citas/42", params={"code": ""}).status_code == 401


def test_master_key_opens_function_routes_and_only_it_opens_admin_routes(host: HostProcess) -> None:
    assert host.get("/api/citas/42", headers=with_key(MASTER_KEY)).status_code == 200
    assert host.get("/api/admin-only", headers=with_key(FUNCTION_KEY)).status_code == 401
    assert host.get("/api/admin-only", headers=with_key(MASTER_KEY)).text == "ok"


def test_known_route_with_other_method_is_404_like_the_real_host(host: HostProcess) -> None:
    response = host.request("DELETE", "/api/citas/42", headers=with_key())
    assert response.status_code == 404
    assert response.content == b""
    assert host.request("POST", "/api/hello/ana").status_code == 404


def test_unknown_route_or_missing_prefix_is_404(host: HostProcess) -> None:
    assert host.get("/api/nothing-here").status_code == 404
    assert host.get("/hello/ana").status_code == 404


def test_post_sees_body_query_and_url_and_gets_status_and_repeated_headers(host: HostProcess) -> None:
    response = host.request("POST", "/api/citas?fuente=rv3&tag=a&tag=b", headers=with_key(), json={"paciente_id": 12})
    assert response.status_code == 201
    assert response.headers["location"] == "/api/citas/1"
    assert response.headers.get_list("x-trace") == ["first", "second"]
    assert response.headers["content-type"] == "application/json"
    echoed = response.json()
    assert echoed["received"] == {"paciente_id": 12}
    assert echoed["params"] == {"fuente": "rv3", "tag": "a,b"}
    assert echoed["url"] == f"{host.base_url}/api/citas?fuente=rv3&tag=a&tag=b"


def test_unhandled_exception_is_500_without_details_and_is_logged(host: HostProcess) -> None:
    response = host.get("/api/boom")
    assert response.status_code == 500
    assert response.content == b""
    log = host.log()
    assert "Executed 'Functions.boom' (Failed" in log
    assert "RuntimeError" in log


def test_each_invocation_is_logged_like_the_real_host(host: HostProcess) -> None:
    host.get("/api/hello/log-check")
    log = host.log()
    assert "Executing 'Functions.hello' (Reason='This function was programmatically called via the host APIs.'" in log
    assert "Executed 'Functions.hello' (Succeeded, Id=" in log


def test_keys_and_request_bodies_never_reach_the_log(host: HostProcess) -> None:
    host.request("POST", "/api/citas", params={"code": FUNCTION_KEY}, json={"paciente": "Rosa Quispe"})
    host.get("/api/citas/5", headers=with_key())
    log = host.log()
    assert FUNCTION_KEY not in log
    assert "Rosa Quispe" not in log


def test_host_without_configured_key_generates_one_prints_it_and_enforces_it(
    app_env: AppEnvironment, start_host: StartHost
) -> None:
    app_env.function_key = None
    host = start_host(app_env)
    line = next(line for line in host.log().splitlines() if "LOCAL_FUNCTION_KEY is not set" in line)
    generated = line.rsplit(" ", 1)[-1]
    assert host.get("/api/citas/1").status_code == 401
    assert host.get("/api/citas/1", headers=with_key(generated)).status_code == 200
    assert host.log().count(generated) == 1


def test_requests_beyond_max_outstanding_get_429_at_once_and_the_held_ones_finish(host: HostProcess) -> None:
    """host.json http.maxOutstandingRequests = 4 in the sample app: an overloaded host refuses quickly (a caller
    such as GHL retries a 429) instead of answering late."""

    def call(_: int) -> tuple[int, float]:
        response = host.get("/api/slow", params={"seconds": "1.5"})
        return response.status_code, time.monotonic()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    assert sorted(status for status, _ in results) == [200] * 4 + [429] * 4
    last_refusal = max(done for status, done in results if status == 429)
    first_served = min(done for status, done in results if status == 200)
    assert last_refusal < first_served, "a refusal must not wait for a held request to finish"
    assert host.get("/api/hello/ana").status_code == 200, "the host serves again once the held ones finish"
