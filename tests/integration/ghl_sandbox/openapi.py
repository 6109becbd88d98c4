"""Validates sandbox responses against GHL's official OpenAPI files (tests/data/ghl-openapi), $refs resolved."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

APPS = ("calendars", "contacts", "locations", "oauth")


BUNDLED = Path(__file__).resolve().parents[2] / "data" / "ghl-openapi"


def spec_dir() -> Path:
    """GHL_OPENAPI_DIR when set, else the copy of GHL's files shipped with the tests."""
    directory = Path(os.environ.get("GHL_OPENAPI_DIR") or BUNDLED)
    if not (directory / "apps" / "calendars.json").exists():
        raise FileNotFoundError(f"GHL OpenAPI files not found in {directory}")
    return directory


def _relax_string_dates(node: Any) -> Any:
    """CalendarEventDTO types startTime/endTime/dateAdded/dateUpdated as `object` while its examples, the
    webhook docs and GHL itself use ISO strings; such properties also accept a string here."""
    if isinstance(node, dict):
        relaxed = {key: _relax_string_dates(value) for key, value in node.items()}
        if relaxed.get("type") == "object" and isinstance(relaxed.get("example"), str):
            relaxed["type"] = ["object", "string"]
        return relaxed
    if isinstance(node, list):
        return [_relax_string_dates(item) for item in node]
    return node


@cache
def _registry() -> Registry[Any]:
    root = spec_dir()
    files = [root / "apps" / f"{app}.json" for app in APPS] + [root / "common" / "common-schemas.json"]
    resources = [
        (
            path.resolve().as_uri(),
            Resource.from_contents(_relax_string_dates(json.loads(path.read_text())), DRAFT4),
        )
        for path in files
    ]
    return Registry().with_resources(resources)


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def response_schema_ref(app: str, method: str, path: str, status: int) -> str:
    document = (spec_dir() / "apps" / f"{app}.json").resolve()
    operation = json.loads(document.read_text())["paths"][path][method.lower()]
    content = operation["responses"][str(status)].get("content")
    assert content, f"{method} {path} documents no body for {status}"
    pointer = _pointer("paths", path, method.lower(), "responses", str(status), "content", "application/json")
    return f"{document.as_uri()}#{pointer}/schema"


def assert_documented(app: str, method: str, path: str, response: httpx.Response) -> Any:
    """The response's status is documented for the operation and its JSON body matches that schema."""
    body = response.json()
    validator = Draft4Validator(
        {"$ref": response_schema_ref(app, method, path, response.status_code)}, registry=_registry()
    )
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, f"{method} {path} {response.status_code} does not match the spec: {errors}"
    return body
