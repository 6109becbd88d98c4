"""A path no route serves: 405 naming the allowed methods when the route exists, else 404; both in the error shape."""

from __future__ import annotations

import asyncio
import json

import azure.functions as func
import pytest

import function_app  # noqa: F401 - declares every route
from blueprints.fallback import route_fallback


def _call(method: str, path: str) -> func.HttpResponse:
    request = func.HttpRequest(method, f"http://localhost/api/{path}", body=b"", route_params={"path": path})
    response = asyncio.run(route_fallback(request))
    assert isinstance(response, func.HttpResponse)
    return response


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "ghl/citas/5", "GET, PUT"),
        ("PATCH", "GHL/Citas", "GET, POST"),
        ("TRACE", "health", "GET"),
        ("GET", "webhooks/ghl", "POST"),
        ("POST", "locations/settings/7", "DELETE, GET, PUT"),
    ],
)
def test_an_undeclared_method_is_405_with_allow(method: str, path: str, allow: str) -> None:
    response = _call(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    error = json.loads(response.get_body())["error"]
    assert error["code"] == "method_not_allowed" and allow in error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "nothing/here"), ("GET", "ghl/citas/abc/cancel/x"), ("DELETE", "ghl/citas/²"), ("GET", "")],
)
def test_a_path_no_route_serves_is_404(method: str, path: str) -> None:
    response = _call(method, path)
    assert response.status_code == 404
    assert json.loads(response.get_body())["error"]["code"] == "not_found"
