"""GHL's payloads as the client returns them, in GHL's own camelCase field names; unknown fields are kept."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr


class GhlModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class Calendar(GhlModel):
    """CalendarDTO of apps/calendars.json."""

    id: str
    name: str
    locationId: str
    description: str | None = None
    isActive: bool = True


class Event(GhlModel):
    """CalendarEventDTO, and the unwrapped AppointmentSchemaResponse of create/update (fields it lacks are None)."""

    id: str
    calendarId: str
    locationId: str
    contactId: str
    title: str | None = None
    appointmentStatus: str | None = None
    assignedUserId: str | None = None
    startTime: str
    endTime: str | None = None
    notes: str | None = None
    address: str | None = None
    dateAdded: str | None = None
    dateUpdated: str | None = None


class Contact(GhlModel):
    """A contact as GET /contacts/{id} and POST /contacts/upsert return it."""

    id: str
    locationId: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class Location(GhlModel):
    """GetLocationByIdSchema of apps/locations.json (a sub-account: one clinic site)."""

    id: str
    name: str | None = None
    timezone: str | None = None


class TokenResponse(GhlModel):
    """GetAccessCodeSuccessfulResponseDto of apps/oauth.json; the tokens are secrets and never print."""

    access_token: SecretStr
    token_type: str = "Bearer"  # noqa: S105 - the kind of token, not a secret
    expires_in: float
    refresh_token: SecretStr | None = None
    scope: str | None = None
    userType: str | None = None
    locationId: str | None = None
    companyId: str | None = None
    approvedLocations: list[str] | None = None
    userId: str | None = None
    planId: str | None = None
    isBulkInstallation: bool | None = None
    installToFutureLocations: bool | None = None
    approveAllLocations: bool | None = None
