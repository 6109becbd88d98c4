"""`python -m tools.api_docs`: write docs/openapi.json and the Postman collection generated from it.

Both come from the same declarations as the routes (`shared.api.routing` + the pydantic schemas); a test checks
that the committed files are current.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

APP_DIR = Path(__file__).resolve().parent.parent
DOCS = APP_DIR / "docs"
OPENAPI_FILE = DOCS / "openapi.json"
POSTMAN_FILE = DOCS / "rv3-ghl-sync.postman_collection.json"
POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"


def openapi() -> dict[str, Any]:
    import function_app  # noqa: F401 - registers every route
    from shared.api.openapi import build_document

    return build_document()


SCALARS: dict[str, Any] = {"integer": 1, "number": 1.0, "boolean": True, "array": [], "string": "string"}


def _example(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value for a JSON schema: its example, else its default, else one built from its type."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    options = [s for s in schema.get("anyOf", schema.get("oneOf", [])) if s.get("type") != "null"]
    if schema.get("examples"):
        value: Any = schema["examples"][0]
    elif schema.get("default") is not None:
        value = schema["default"]
    elif options:
        value = _example(options[0], components, depth)
    elif schema.get("type") == "object" and depth < 3:
        required = set(schema.get("required", []))
        properties = schema.get("properties", {}).items()
        value = {n: _example(p, components, depth + 1) for n, p in properties if n in required or "examples" in p}
    elif schema.get("format") == "date-time":
        value = "2030-03-12T10:00:00-05:00"
    else:
        value = SCALARS.get(str(schema.get("type")), "string")
    return value


def postman(document: dict[str, Any]) -> dict[str, Any]:
    from shared.settings import DEV_MANYCHAT_KEY

    components = document["components"]["schemas"]
    folders: dict[str, list[dict[str, Any]]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            segments = [re.sub(r"\{(\w+)\}", r":\1", part) for part in path.strip("/").split("/")]
            url: dict[str, Any] = {
                "raw": "{{base_url}}/" + "/".join(segments),
                "host": ["{{base_url}}"],
                "path": segments,
            }
            params = operation.get("parameters", [])
            query = [p for p in params if p["in"] == "query"]
            if query:
                url["query"] = [{"key": p["name"], "value": "", "disabled": not p["required"]} for p in query]
            variables = [p for p in params if p["in"] == "path"]
            if variables:
                url["variable"] = [{"key": p["name"], "value": "1"} for p in variables]
            request: dict[str, Any] = {
                "method": method.upper(),
                "header": [
                    {"key": p["name"], "value": "", "disabled": True, "description": p.get("description", "")}
                    for p in params
                    if p["in"] == "header"
                ],
                "url": url,
                "description": operation["summary"],
            }
            if "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                request["header"].append({"key": "Content-Type", "value": "application/json"})
                request["body"] = {
                    "mode": "raw",
                    "raw": json.dumps(_example(schema, components), indent=2, ensure_ascii=False),
                    "options": {"raw": {"language": "json"}},
                }
            if operation.get("security") == []:
                request["auth"] = {"type": "noauth"}
            elif operation.get("security") == [{"apiKey": []}]:
                request["auth"] = _api_key("X-API-KEY", "{{manychat_api_key}}")
            folders.setdefault(operation["tags"][0], []).append({"name": operation["summary"], "request": request})
    return {
        "info": {
            "name": "rv3-ghl-sync",
            "description": document["info"]["description"],
            "schema": POSTMAN_SCHEMA,
        },
        "auth": _api_key("x-functions-key", "{{function_key}}"),
        "variable": [
            {"key": "base_url", "value": "http://127.0.0.1:7071"},
            {"key": "function_key", "value": "local-dev-key"},
            {"key": "manychat_api_key", "value": DEV_MANYCHAT_KEY},
        ],
        "item": [{"name": tag, "item": items} for tag, items in sorted(folders.items())],
    }


def _api_key(header: str, value: str) -> dict[str, Any]:
    return {
        "type": "apikey",
        "apikey": [
            {"key": "key", "value": header, "type": "string"},
            {"key": "value", "value": value, "type": "string"},
            {"key": "in", "value": "header", "type": "string"},
        ],
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main() -> int:
    document = openapi()
    DOCS.mkdir(exist_ok=True)
    OPENAPI_FILE.write_text(render(document), encoding="utf-8")
    POSTMAN_FILE.write_text(render(postman(document)), encoding="utf-8")
    print(f"wrote {OPENAPI_FILE.relative_to(APP_DIR)} and {POSTMAN_FILE.relative_to(APP_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
