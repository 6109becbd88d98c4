"""Contacts and Locations APIs: create, upsert with duplicate rules, duplicate search, get/update/delete."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tools.ghl_sandbox import DEMO_LOCATION_ID, DEMO_PRIVATE_TOKEN, SandboxServer
from tools.ghl_sandbox.config import LocationSeed, PrivateTokenSeed, SeedSpec

from .helpers import CONTACTS
from .openapi import assert_documented


def _create(ghl: httpx.Client, **fields: Any) -> httpx.Response:
    return ghl.post("/contacts/", json={"locationId": DEMO_LOCATION_ID, **fields}, headers=CONTACTS)


def _upsert(ghl: httpx.Client, **fields: Any) -> httpx.Response:
    return ghl.post("/contacts/upsert", json={"locationId": DEMO_LOCATION_ID, **fields}, headers=CONTACTS)


def test_created_contact_answers_201_with_normalised_phone(ghl: httpx.Client) -> None:
    response = _create(ghl, firstName="Rosa", lastName="Flores", phone="987 000 555", email="Rosa@Example.com")

    body = assert_documented("contacts", "POST", "/contacts/", response)
    assert response.status_code == 201
    assert body["contact"]["phone"] == "+51987000555"  # E.164 with the location's country
    assert body["contact"]["emailLowerCase"] == "rosa@example.com"


def test_location_without_duplicates_refuses_a_second_contact_with_the_same_email(ghl: httpx.Client) -> None:
    first = _create(ghl, firstName="Rosa", email="rosa@example.com").json()["contact"]["id"]

    response = _create(ghl, firstName="Otra", email="ROSA@example.com")

    body = assert_documented("contacts", "POST", "/contacts/", response)
    assert response.status_code == 400
    assert body["meta"] == {"contactName": "Rosa", "contactId": first, "matchingField": "email"}


def test_upsert_updates_the_contact_matched_by_email(ghl: httpx.Client) -> None:
    first = _upsert(ghl, firstName="Rosa", email="rosa@example.com", tags=["a", "b"])
    second = _upsert(ghl, firstName="Rosa María", email="rosa@example.com", tags=["c"])

    created = assert_documented("contacts", "POST", "/contacts/upsert", first)
    updated = assert_documented("contacts", "POST", "/contacts/upsert", second)
    assert (created["new"], updated["new"]) == (True, False)
    assert updated["contact"]["id"] == created["contact"]["id"]
    assert updated["contact"]["tags"] == ["c"]  # upsert replaces tags, as documented
    assert updated["traceId"] == second.headers["x-trace-id"]


def test_upsert_matches_a_phone_written_another_way(ghl: httpx.Client) -> None:
    first = _upsert(ghl, firstName="Luis", phone="+51 987-000-222").json()["contact"]["id"]

    again = _upsert(ghl, firstName="Luis", phone="987000222").json()

    assert (again["new"], again["contact"]["id"]) == (False, first)


def test_upsert_prefers_the_first_priority_field_and_drops_a_conflicting_second(ghl: httpx.Client) -> None:
    by_email = _create(ghl, firstName="A", email="a@example.com").json()["contact"]["id"]
    by_phone = _create(ghl, firstName="B", phone="+51987000333").json()["contact"]["id"]

    result = _upsert(ghl, email="a@example.com", phone="+51987000333").json()

    assert (result["new"], result["contact"]["id"]) == (False, by_email)
    assert "phone" not in result["contact"]
    assert ghl.get(f"/contacts/{by_phone}", headers=CONTACTS).json()["contact"]["phone"] == "+51987000333"


def test_location_allowing_duplicates_creates_new_contacts_when_asked(sandbox: SandboxServer) -> None:
    sandbox.admin.seed(
        SeedSpec(
            locations=[
                LocationSeed(
                    id="loc_dup",
                    name="Sede Norte",
                    allow_duplicate_contact=True,
                    private_tokens=[PrivateTokenSeed(token="pit-dup")],
                )
            ]
        )
    )
    with httpx.Client(base_url=sandbox.url, headers={"Authorization": "Bearer pit-dup", **CONTACTS}) as client:
        body = {"locationId": "loc_dup", "email": "x@example.com", "createNewIfDuplicateAllowed": True}
        first = client.post("/contacts/upsert", json=body).json()["contact"]["id"]
        second = client.post("/contacts/upsert", json=body).json()["contact"]["id"]
        plain = client.post("/contacts/", json={"locationId": "loc_dup", "email": "x@example.com"})

    assert first != second
    assert plain.status_code == 201


def test_duplicate_search_returns_the_contact_or_null(ghl: httpx.Client) -> None:
    """The spec documents no 200 body for this endpoint: the sandbox answers {"contact": {...} | null}."""
    created = _create(ghl, firstName="Rosa", email="rosa+clinic@example.com", phone="+51987000444")
    contact_id = created.json()["contact"]["id"]
    params = {"locationId": DEMO_LOCATION_ID}

    by_email = ghl.get(
        "/contacts/search/duplicate", params={**params, "email": "rosa+clinic@example.com"}, headers=CONTACTS
    )
    by_number = ghl.get("/contacts/search/duplicate", params={**params, "number": "+51987000444"}, headers=CONTACTS)
    nobody = ghl.get("/contacts/search/duplicate", params={**params, "email": "x@example.com"}, headers=CONTACTS)

    assert by_email.json()["contact"]["id"] == contact_id
    assert by_number.json()["contact"]["id"] == contact_id
    assert nobody.json() == {"contact": None}


def test_contact_can_be_read_updated_and_deleted(ghl: httpx.Client, contact_id: str) -> None:
    read = ghl.get(f"/contacts/{contact_id}", headers=CONTACTS)
    updated = ghl.put(f"/contacts/{contact_id}", json={"lastName": "Flores Díaz"}, headers=CONTACTS)
    deleted = ghl.delete(f"/contacts/{contact_id}", headers=CONTACTS)
    gone = ghl.get(f"/contacts/{contact_id}", headers=CONTACTS)

    assert assert_documented("contacts", "GET", "/contacts/{contactId}", read)["contact"]["firstName"] == "Rosa"
    update_body = assert_documented("contacts", "PUT", "/contacts/{contactId}", updated)
    assert (update_body["succeded"], update_body["contact"]["name"]) == (True, "Rosa Flores Díaz")
    assert assert_documented("contacts", "DELETE", "/contacts/{contactId}", deleted) == {"succeded": True}
    assert gone.status_code == 400


def test_unknown_or_mistyped_properties_are_unprocessable(ghl: httpx.Client) -> None:
    response = _create(ghl, firstName=7, nickname="Rosi", email="not-an-email")

    body = assert_documented("contacts", "POST", "/contacts/", response)
    assert response.status_code == 422
    assert set(body["message"]) == {
        "property nickname should not exist",
        "firstName must be a string",
        "email must be an email",
    }


def test_location_answers_with_its_timezone(ghl: httpx.Client) -> None:
    response = ghl.get(f"/locations/{DEMO_LOCATION_ID}", headers=CONTACTS)

    body = assert_documented("locations", "GET", "/locations/{locationId}", response)
    assert (body["location"]["name"], body["location"]["timezone"]) == (
        "Reflexo Perú - Sede Principal",
        "America/Lima",
    )


def test_concurrent_upserts_of_one_person_make_one_contact(sandbox: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {DEMO_PRIVATE_TOKEN}", **CONTACTS}
    body = {"locationId": DEMO_LOCATION_ID, "firstName": "Ana", "email": "ana@example.com"}

    async def upsert_many() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=sandbox.url, headers=headers, timeout=5) as client:
            answers = await asyncio.gather(*(client.post("/contacts/upsert", json=body) for _ in range(20)))
        return [a.json() for a in answers]

    results = asyncio.run(upsert_many())

    assert len({r["contact"]["id"] for r in results}) == 1
    assert sum(r["new"] for r in results) == 1
