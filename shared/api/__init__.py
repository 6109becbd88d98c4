"""HTTP API plumbing: route declarations, request parsing, pydantic schemas and the OpenAPI document."""
