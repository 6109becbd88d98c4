"""What a MiaSalud record is in Odoo: the partner and lead values, the stage and salesperson chosen on purpose."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sync_core.text import fold

SyncMode = Literal["leads", "contacts", "both"]
RecordKind = Literal["contact", "campaign_contact"]
PARTNER, LEAD, STAGE = "res.partner", "crm.lead", "crm.stage"
MAX_NAME_CHARS = 200

# `ultimo_estado` → the name of an Odoo `crm.stage`: the mapping's defaults (the API manages it per deployment).
DEFAULT_STAGES = {
    "Nuevo Lead": "Nuevo",
    "Nuevo": "Nuevo",
    "Asignado a campaña": "Calificado",
    "Asignado a médico": "Calificado",
    "Cita agendada": "Propuesta",
    "Cliente": "Ganado",
}


# What a lead copies from the rows it points at (`lead_values`): a change to one of these is a change to every lead
# of that contact, campaign or advisor, which must be pushed again.
LEAD_COPIES = {
    "contact": frozenset({"first_name", "last_name", "phone", "phone_valid", "email"}),
    "campaign": frozenset({"name", "manychat_campaign_id"}),
    "advisor": frozenset({"odoo_user_id"}),
}


def leads_follow(source: str, changed: Iterable[str]) -> bool:
    """Whether changing `changed` of a `source` row (contact, campaign, advisor) changes the leads pointing at it."""
    return not LEAD_COPIES.get(source, frozenset()).isdisjoint(changed)


def restaged(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """The (folded) states whose leads a new stage mapping moves: mapped anew or to another stage. A state no
    longer mapped leaves its leads where they are (an unknown state keeps the lead's stage)."""
    return {state for state, stage in after.items() if before.get(state) != stage}


def pushed(mode: SyncMode, kind: RecordKind) -> bool:
    """Whether `ODOO_SYNC` sends this kind of record: partners in contacts/both, leads in leads/both."""
    return mode in ("contacts", "both") if kind == "contact" else mode in ("leads", "both")


@dataclass(frozen=True)
class Lead:
    """A MiaSalud contact as Odoo is told about it (a partner, or the contact part of a lead)."""

    manychat_id: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    phone_valid: bool | None
    email: str | None = None

    @property
    def name(self) -> str:
        """The person's name, else their ManyChat id: Odoo requires a name, and a lead may have none yet."""
        given = " ".join(part for part in (self.first_name, self.last_name) if part)
        return (given or f"ManyChat {self.manychat_id}")[:MAX_NAME_CHARS]

    @property
    def valid_phone(self) -> str | None:
        """Only a phone that reads as a valid number is sent: an invalid one stays in SQL, flagged."""
        return self.phone if self.phone and self.phone_valid else None


@dataclass(frozen=True)
class Assignment:
    """A campaign contact as its Odoo lead shows it."""

    campaign_number: int | None  # ManyChat's campaign id; None for a campaign staff created without one
    campaign_id: int  # this API's
    campaign_name: str | None
    last_state: str | None
    summary: str | None
    salesperson: int | None  # the Odoo user of the mapped advisor (medical first, then commercial), if any


def partner_values(lead: Lead) -> dict[str, Any]:
    """`res.partner` values: never `mobile` (removed in Odoo 19); the phone only when valid."""
    return {"name": lead.name, "phone": lead.valid_phone or False, "x_manychat_id": lead.manychat_id}


def stage_name(last_state: str | None, mapping: dict[str, str]) -> str | None:
    """The Odoo stage `ultimo_estado` maps to (case, accents and spacing aside); None when it is not mapped."""
    if last_state is None:
        return None
    folded = {fold(state): stage for state, stage in mapping.items()}
    return folded.get(fold(last_state))


def lead_values(
    lead: Lead,
    assignment: Assignment,
    *,
    lead_type: Literal["lead", "opportunity"],
    stage_id: int | None,
    partner_id: int | None,
) -> dict[str, Any]:
    """`crm.lead` values: `type` always set; `user_id` always decided (the mapped advisor's user, or none — never
    left to default to the API user); the stage only when the state maps to one (an unknown state keeps the lead's
    stage); `partner_id` when the contact is also a partner (`ODOO_SYNC=both`)."""
    campaign = assignment.campaign_name or f"Campaña {assignment.campaign_number or assignment.campaign_id}"
    values: dict[str, Any] = {
        "name": f"{lead.name} — {campaign}"[:MAX_NAME_CHARS],
        "type": lead_type,
        "contact_name": lead.name,
        "phone": lead.valid_phone or False,
        "email_from": lead.email or False,
        "user_id": assignment.salesperson or False,
        "description": assignment.summary or False,
        "x_manychat_id": lead.manychat_id,
        "x_campaign_id": campaign_key(assignment),
    }
    if stage_id is not None:
        values["stage_id"] = stage_id
    if partner_id is not None:
        values["partner_id"] = partner_id
    return values


def campaign_key(assignment: Assignment) -> int:
    """The lead's `x_campaign_id` (an integer field): ManyChat's campaign number; for a campaign staff created
    without one, this API's id, negative so the two never meet."""
    return assignment.campaign_number if assignment.campaign_number is not None else -assignment.campaign_id


# Archived records too: Odoo's searches skip them unless the domain names `active`, and a partner staff archived or a
# lead marked lost is still the one record of its contact (creating another would double it).
ARCHIVED_TOO = ("active", "in", [True, False])


def partner_domain(manychat_id: str) -> list[Any]:
    """How the partner of a contact is found before any create: nothing in Odoo makes `x_manychat_id` unique."""
    return [("x_manychat_id", "=", manychat_id), ARCHIVED_TOO]


def lead_domain(manychat_id: str, x_campaign_id: int) -> list[Any]:
    """How the lead of a campaign contact is found before any create (one lead per contact and campaign)."""
    return [("x_manychat_id", "=", manychat_id), ("x_campaign_id", "=", x_campaign_id), ARCHIVED_TOO]


# A partner as staff read and write it through the API (`/api/v1/odoo/contacts`).
PARTNER_FIELDS = ["name", "phone", "email", "x_manychat_id", "active"]


@dataclass(frozen=True)
class PartnerProblem:
    field: str
    code: str
    message: str


def staff_partner_values(
    name: str, phone: str | None, email: str | None, manychat_id: str | None, *, phone_region: str
) -> tuple[dict[str, Any], list[PartnerProblem]]:
    """The `res.partner` values staff asked for (phone as E.164, email normalised, blanks emptied), or why not: a
    phone or email that is not valid is refused, never written to Odoo as if it were."""
    from sync_core.contacts import normalize_email
    from sync_core.phones import read_phone

    problems: list[PartnerProblem] = []
    number = read_phone(phone, phone_region) if phone and phone.strip() else None
    if number is not None and not number.valid:
        problems.append(PartnerProblem("phone", "invalid_phone", "El teléfono no es un número válido."))
    address = normalize_email(email) if email and email.strip() else None
    if email and email.strip() and address is None:
        problems.append(PartnerProblem("email", "invalid_email", "El correo electrónico no es válido."))
    values = {
        "name": name.strip()[:MAX_NAME_CHARS],
        "phone": number.number if number is not None and number.valid else False,
        "email": address or False,
        "x_manychat_id": (manychat_id or "").strip() or False,
    }
    return values, problems


def partner_search_domain(q: str | None, manychat_id: str | None, *, include_archived: bool) -> list[Any]:
    """The partners a staff search lists: `q` in the name or phone or exactly the x_manychat_id; archived ones
    only when asked (said in the domain, so every Odoo and the sandbox read it alike)."""
    domain: list[Any] = [ARCHIVED_TOO] if include_archived else [("active", "=", True)]
    if manychat_id:
        domain.append(("x_manychat_id", "=", manychat_id))
    if q:
        domain += ["|", "|", ("name", "ilike", q), ("phone", "ilike", q), ("x_manychat_id", "=", q)]
    return domain
