"""The API's own description: the OpenAPI 3.1 document generated from the pydantic models."""

import azure.functions as func

from shared.api.routing import api_route
from shared.http import json_response
from shared.lazy import serial_imports

bp = func.Blueprint()


@api_route(
    bp, "openapi.json", methods=["GET"], summary="This API's OpenAPI 3.1 document", tag="docs", dependencies=False
)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    with serial_imports:
        from shared.api.openapi import build_document

    return json_response(build_document())
