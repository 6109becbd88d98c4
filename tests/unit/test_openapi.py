"""The API's OpenAPI document: valid OpenAPI 3.1, generated from the same declarations as the routes."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from shared.api.openapi import build_document
from shared.console.routing import CONSOLE_ROUTES
from tests.fixtures.functions import app_functions

FUNCTIONS = app_functions()
FALLBACK_ROUTE = "{*path}"  # answers 404/405 for what no documented route serves
# The operations console's pages are HTML for signed-in staff, not the API: not in the document, nor fuzzed.
NOT_API = {FALLBACK_ROUTE, *CONSOLE_ROUTES}


def _http_routes() -> set[tuple[str, str]]:
    routes = set()
    for fn in FUNCTIONS:
        trigger = fn.get_trigger()
        if trigger is not None and trigger.get_binding_name() == "httpTrigger":
            binding = trigger.get_dict_repr()
            if binding["route"] in NOT_API:
                continue
            path = "/api/" + re.sub(r"\{(\w+)(:[a-z]+)?\}", r"{\1}", str(binding["route"]))
            for method in binding["methods"]:
                routes.add((path, str(getattr(method, "value", method)).lower()))
    return routes


def test_the_document_is_valid_openapi_3_1() -> None:
    document = build_document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_http_function_is_documented_and_nothing_else() -> None:
    documented = {(path, method) for path, ops in build_document()["paths"].items() for method in ops}
    assert documented == _http_routes()


def test_create_cita_documents_its_body_errors_and_idempotency_header() -> None:
    operation = build_document()["paths"]["/api/ghl/citas"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/CitaIn")
    assert {"201", "400", "409", "422"} <= set(operation["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in operation["parameters"])


def test_anonymous_routes_declare_no_security_and_the_rest_need_a_function_key() -> None:
    document = build_document()
    assert document["paths"]["/api/webhooks/ghl"]["post"]["security"] == []
    assert "security" not in document["paths"]["/api/ghl/citas"]["get"]
    assert document["security"] == [{"functionKeyHeader": []}, {"functionKeyQuery": []}]


def test_the_committed_api_docs_are_current() -> None:
    from tools import api_docs

    document = api_docs.openapi()
    stale = "docs/ are stale: run `.venv/bin/python -m tools.api_docs` and commit the result"
    assert api_docs.OPENAPI_FILE.read_text(encoding="utf-8") == api_docs.render(document), stale
    assert api_docs.POSTMAN_FILE.read_text(encoding="utf-8") == api_docs.render(api_docs.postman(document)), stale


def test_the_postman_collection_has_every_operation_with_key_auth() -> None:
    from tools import api_docs

    document = api_docs.openapi()
    collection = api_docs.postman(document)
    requests = [item["request"] for folder in collection["item"] for item in folder["item"]]
    assert len(requests) == sum(len(ops) for ops in document["paths"].values())
    assert collection["auth"]["type"] == "apikey"
    webhook = next(r for r in requests if r["url"]["raw"].endswith("/webhooks/ghl"))
    assert webhook["auth"] == {"type": "noauth"}
