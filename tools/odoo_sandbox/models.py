"""The models of the demo database and their fields, as `fields_get` describes them (Odoo 19 names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FIELD_TYPES = ("char", "text", "html", "integer", "float", "boolean", "selection", "many2one", "date", "datetime")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    string: str
    required: bool = False
    readonly: bool = False
    relation: str | None = None
    selection: tuple[tuple[str, str], ...] = ()
    default: Any = None  # a value, or "uid" for the calling user (crm.lead.user_id)
    manual: bool = False  # a custom x_ field (ir.model.fields state manual)

    def describe(self) -> dict[str, Any]:
        """The field as `fields_get` answers it."""
        description: dict[str, Any] = {
            "type": self.type,
            "string": self.string,
            "help": "",
            "required": self.required,
            "readonly": self.readonly,
            "store": self.name != "display_name",
            "searchable": True,
            "sortable": self.name != "display_name",
            "manual": self.manual,
        }
        if self.relation:
            description["relation"] = self.relation
        if self.selection:
            description["selection"] = [list(option) for option in self.selection]
        return description

    def empty(self) -> Any:
        """What Odoo stores and answers for a field with no value."""
        if self.type == "boolean":
            return False
        if self.type in ("integer", "float"):
            return 0
        return False


@dataclass
class Model:
    name: str  # technical name, e.g. crm.lead
    description: str  # _description, as access errors name it
    order: tuple[tuple[str, bool], ...]  # _order: (field, descending)
    fields: dict[str, Field] = field(default_factory=dict)
    admin_writes: bool = False  # create/write/unlink need Administration/Settings


def _common() -> list[Field]:
    return [
        Field("id", "integer", "ID", readonly=True),
        Field("display_name", "char", "Display Name", readonly=True),
        Field("create_date", "datetime", "Created on", readonly=True),
        Field("write_date", "datetime", "Last Updated on", readonly=True),
    ]


def _model(name: str, description: str, order: str, fields: list[Field], *, admin_writes: bool = False) -> Model:
    terms = []
    for part in order.split(","):
        fname, _, direction = part.strip().partition(" ")
        terms.append((fname, direction.strip().lower() == "desc"))
    model = Model(name, description, tuple(terms), admin_writes=admin_writes)
    for f in [*_common(), *fields]:
        model.fields[f.name] = f
    return model


STATE = (("base", "Base Field"), ("manual", "Custom Field"))


def demo_models() -> dict[str, Model]:
    """Fresh models for a new database (custom fields are added to these by ir.model.fields)."""
    models = [
        _model(
            "res.partner", "Contact", "name, id desc",
            [
                Field("name", "char", "Name"),
                Field("phone", "char", "Phone"),
                Field("email", "char", "Email"),
                Field("is_company", "boolean", "Is a Company"),
                Field("type", "selection", "Address Type", selection=(
                    ("contact", "Contact"), ("invoice", "Invoice Address"), ("delivery", "Delivery Address"),
                    ("other", "Other Address"),
                ), default="contact"),
                Field("active", "boolean", "Active", default=True),
                Field("comment", "html", "Notes"),
            ],
        ),
        _model(
            "crm.lead", "Lead/Opportunity", "id desc",
            [
                Field("name", "char", "Opportunity", required=True),
                Field("type", "selection", "Type", required=True,
                      selection=(("lead", "Lead"), ("opportunity", "Opportunity")), default="lead"),
                Field("partner_id", "many2one", "Customer", relation="res.partner"),
                Field("contact_name", "char", "Contact Name"),
                Field("phone", "char", "Phone"),
                Field("email_from", "char", "Email"),
                Field("stage_id", "many2one", "Stage", relation="crm.stage"),
                Field("user_id", "many2one", "Salesperson", relation="res.users", default="uid"),
                Field("description", "html", "Notes"),
                Field("active", "boolean", "Active", default=True),
            ],
        ),
        _model(
            "crm.stage", "CRM Stages", "sequence, name, id",
            [
                Field("name", "char", "Stage Name", required=True),
                Field("sequence", "integer", "Sequence", default=1),
                Field("is_won", "boolean", "Is Won Stage?"),
                Field("fold", "boolean", "Folded in Pipeline"),
            ],
            admin_writes=True,
        ),
        _model(
            "res.users", "User", "name, login",
            [
                Field("name", "char", "Name", required=True),
                Field("login", "char", "Login", required=True),
                Field("partner_id", "many2one", "Related Partner", relation="res.partner", required=True),
                Field("active", "boolean", "Active", default=True),
                Field("share", "boolean", "Share User", readonly=True),
            ],
            admin_writes=True,
        ),
        _model(
            "ir.model", "Models", "model",
            [
                Field("name", "char", "Model Description", required=True),
                Field("model", "char", "Model", required=True),
                Field("state", "selection", "Type", selection=STATE, default="base"),
            ],
            admin_writes=True,
        ),
        _model(
            "ir.model.fields", "Fields", "name",
            [
                Field("name", "char", "Field Name", required=True),
                Field("field_description", "char", "Field Label", required=True),
                Field("model", "char", "Model Name", readonly=True),
                Field("model_id", "many2one", "Model", relation="ir.model", required=True),
                Field("ttype", "selection", "Field Type", required=True,
                      selection=tuple((t, t) for t in FIELD_TYPES)),
                Field("state", "selection", "Type", required=True, selection=STATE, default="manual"),
                Field("required", "boolean", "Required"),
                Field("readonly", "boolean", "Readonly"),
                Field("relation", "char", "Related Model"),
            ],
            admin_writes=True,
        ),
    ]  # fmt: skip
    return {m.name: m for m in models}
