"""Contacts API (Version 2021-07-28): create, upsert, duplicate search, get, update, delete.

Duplicate rules follow the upsert and duplicate-search descriptions in apps/contacts.json: a location
either allows duplicate contacts or not, and matches existing contacts by email and phone in its
configured priority order.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .endpoints import CONTACTS_VERSION, Endpoint, json_object
from .errors import bad_request, trace_id, unprocessable
from .render import contact_dto
from .sandbox import Sandbox, require_location, sandbox_of
from .state import Contact, Location, clean_contact_fields, new_id, normalize_phone

_TEXT_FIELDS = (
    "firstName", "lastName", "name", "email", "gender", "phone", "address1", "city", "state", "postalCode",
    "website", "timezone", "source", "dateOfBirth", "country", "companyName", "assignedTo",
)  # fmt: skip
_OTHER_FIELDS = ("dnd", "dndSettings", "inboundDndSettings", "tags", "customFields")
UPDATE_FIELDS = frozenset(_TEXT_FIELDS + _OTHER_FIELDS) - {"gender"}
CREATE_FIELDS = frozenset(_TEXT_FIELDS + _OTHER_FIELDS + ("locationId",))
UPSERT_FIELDS = CREATE_FIELDS | {"createNewIfDuplicateAllowed"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DUPLICATE_NOT_ALLOWED = "This location does not allow duplicated contacts."


def _validated(data: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """Whitelist validation as GHL's API does it: unknown properties and wrong types are 422."""
    problems = [f"property {key} should not exist" for key in data if key not in allowed]
    for key in _TEXT_FIELDS:
        if data.get(key) is not None and not isinstance(data[key], str):
            problems.append(f"{key} must be a string")
    if isinstance(data.get("email"), str) and data["email"] and not _EMAIL.match(data["email"]):
        problems.append("email must be an email")
    tags = data.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        problems.append("each value in tags must be a string")
    if data.get("dnd") is not None and not isinstance(data["dnd"], bool):
        problems.append("dnd must be a boolean value")
    if problems:
        raise unprocessable(*problems)
    return {k: v for k, v in data.items() if k not in ("locationId", "createNewIfDuplicateAllowed")}


def _location(sandbox: Sandbox, data: dict[str, Any]) -> Location:
    location_id = data.get("locationId")
    if not isinstance(location_id, str) or not location_id:
        raise unprocessable("locationId should not be empty", "locationId must be a string")
    location = sandbox.state.locations.get(location_id)
    if location is None:
        raise bad_request("Location not found")
    return location


def _key(field: str, value: Any, location: Location) -> str:
    if not isinstance(value, str) or not value:
        return ""
    return value.strip().lower() if field == "email" else normalize_phone(value, location.country)


def find_duplicate(
    sandbox: Sandbox, location: Location, values: dict[str, Any], order: list[str], exclude: str = ""
) -> tuple[Contact, str] | None:
    """The first contact of the location matching `values` on a field, trying fields in `order`."""
    for field in order:
        wanted = _key(field, values.get(field), location)
        if not wanted:
            continue
        for contact in sandbox.state.contacts.values():
            if (
                contact.location_id == location.id
                and contact.id != exclude
                and _key(field, contact.fields.get(field), location) == wanted
            ):
                return contact, field
    return None


def _refuse_duplicate(sandbox: Sandbox, location: Location, values: dict[str, Any], exclude: str) -> None:
    if location.allow_duplicate_contact:
        return
    match = find_duplicate(sandbox, location, values, location.duplicate_priority, exclude)
    if match:
        contact, field = match
        raise bad_request(
            DUPLICATE_NOT_ALLOWED,
            meta={
                "contactName": contact.fields.get("name", ""),
                "contactId": contact.id,
                "matchingField": field,
            },
        )


def create_contact(sandbox: Sandbox, location: Location, fields: dict[str, Any]) -> Contact:
    now = sandbox.state.stamp()
    contact = Contact(new_id(), location.id, clean_contact_fields(fields, location.country), now, now)
    sandbox.state.contacts[contact.id] = contact
    sandbox.contact_changed("ContactCreate", contact)
    return contact


def update_contact(sandbox: Sandbox, contact: Contact, fields: dict[str, Any]) -> None:
    """Merge `fields` (tags replace the old list, as GHL documents for upsert); emit only on a change."""
    location = sandbox.state.locations[contact.location_id]
    merged = clean_contact_fields({**contact.fields, **fields}, location.country)
    if merged == contact.fields:
        return
    contact.fields = merged
    contact.date_updated = sandbox.state.stamp(contact.date_updated)
    sandbox.contact_changed("ContactUpdate", contact)


def find_contact(sandbox: Sandbox, contact_id: str) -> Contact:
    contact = sandbox.state.contacts.get(contact_id)
    if contact is None:
        raise sandbox.not_found("Contact not found")
    return contact


async def post_contact(request: Request) -> Response:
    sandbox = sandbox_of(request)
    data = await json_object(request)
    location = _location(sandbox, data)
    require_location(request, location.id)
    fields = _validated(data, CREATE_FIELDS)
    _refuse_duplicate(sandbox, location, fields, exclude="")
    contact = create_contact(sandbox, location, fields)
    return JSONResponse({"contact": {**contact_dto(contact), "deleted": False}}, status_code=201)


async def upsert_contact(request: Request) -> Response:
    sandbox = sandbox_of(request)
    data = await json_object(request)
    location = _location(sandbox, data)
    require_location(request, location.id)
    fields = _validated(data, UPSERT_FIELDS)
    always_new = location.allow_duplicate_contact and data.get("createNewIfDuplicateAllowed") is True
    match = None if always_new else find_duplicate(sandbox, location, fields, location.duplicate_priority)
    if match is None:
        contact, created = create_contact(sandbox, location, fields), True
    else:
        contact, matched_on = match
        if not location.allow_duplicate_contact:
            # GHL updates the contact matching the first-priority field and ignores a second field that
            # would make it a duplicate of another contact.
            for field in location.duplicate_priority:
                if field != matched_on and find_duplicate(sandbox, location, fields, [field], contact.id):
                    fields.pop(field, None)
        update_contact(sandbox, contact, fields)
        created = False
    return JSONResponse({"new": created, "contact": contact_dto(contact), "traceId": trace_id(request)})


async def duplicate_search(request: Request) -> Response:
    """Not documented beyond "200": answers {"contact": {...}} or {"contact": null}."""
    sandbox = sandbox_of(request)
    location_id = request.query_params.get("locationId")
    if not location_id:
        raise bad_request("locationId should not be empty")
    require_location(request, location_id)
    location = sandbox.state.locations.get(location_id)
    if location is None:
        raise bad_request("Location not found")
    values = {"email": request.query_params.get("email"), "phone": request.query_params.get("number")}
    order = ["email", "phone"] if location.allow_duplicate_contact else location.duplicate_priority
    match = find_duplicate(sandbox, location, values, order)
    return JSONResponse({"contact": contact_dto(match[0]) if match else None})


async def get_contact(request: Request) -> Response:
    sandbox = sandbox_of(request)
    contact = find_contact(sandbox, request.path_params["contactId"])
    require_location(request, contact.location_id)
    return JSONResponse({"contact": contact_dto(contact)})


async def put_contact(request: Request) -> Response:
    sandbox = sandbox_of(request)
    data = await json_object(request)  # before the lookup: no await may split a read from its write
    contact = find_contact(sandbox, request.path_params["contactId"])
    require_location(request, contact.location_id)
    fields = _validated(data, UPDATE_FIELDS)
    _refuse_duplicate(sandbox, sandbox.state.locations[contact.location_id], fields, exclude=contact.id)
    update_contact(sandbox, contact, fields)
    return JSONResponse({"succeded": True, "contact": contact_dto(contact)})


async def delete_contact(request: Request) -> Response:
    sandbox = sandbox_of(request)
    contact = find_contact(sandbox, request.path_params["contactId"])
    require_location(request, contact.location_id)
    del sandbox.state.contacts[contact.id]
    sandbox.contact_changed("ContactDelete", contact)
    return JSONResponse({"succeded": True})


_V = CONTACTS_VERSION
ENDPOINTS = [
    Endpoint("POST", "/contacts/", post_contact, _V, "contacts.write"),
    Endpoint("POST", "/contacts/upsert", upsert_contact, _V, "contacts.write"),
    Endpoint("GET", "/contacts/search/duplicate", duplicate_search, _V, "contacts.readonly"),
    Endpoint("GET", "/contacts/{contactId}", get_contact, _V, "contacts.readonly"),
    Endpoint("PUT", "/contacts/{contactId}", put_contact, _V, "contacts.write"),
    Endpoint("DELETE", "/contacts/{contactId}", delete_contact, _V, "contacts.write"),
]
