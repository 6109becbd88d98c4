"""The model methods the sandbox serves, with Odoo's signatures (JSON-2 binds its named arguments to them) and
Odoo's errors: search, search_count, search_read, read, create, write, unlink, fields_get, name_search."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .config import CustomFieldSeed
from .database import Database, timestamp
from .domain import matches, parse
from .exceptions import (
    OdooFault,
    access_error,
    builtin_error,
    missing_error,
    user_error,
    validation_error,
)
from .models import FIELD_TYPES, Field, Model

WRITE_METHODS = frozenset({"create", "write", "unlink"})
_OPERATION_VERBS = {"read": "access", "write": "modify", "create": "create", "unlink": "delete"}
# convert_to_cache of the scalar field types (Python's own error message when a value does not convert).
_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "char": str, "text": str, "html": str, "date": str, "datetime": str,
    "integer": int, "float": float, "boolean": bool,
}  # fmt: skip

F = TypeVar("F", bound=Callable[..., Any])


def model_method(func: F) -> F:
    """@api.model: called on the model, without ids."""
    func._api_model = True  # type: ignore[attr-defined]
    return func


@dataclass(frozen=True)
class Env:
    db: Database
    uid: int

    @property
    def is_admin(self) -> bool:
        return self.uid in self.db.admins

    def __getitem__(self, model: str) -> Recordset:
        return Recordset(self, self.db.models[model])


class Recordset:
    """`self` of a model method: the model and, for record methods (read, write, unlink), the ids."""

    PUBLIC = frozenset(
        {"search", "search_count", "search_read", "read", "create", "write", "unlink", "fields_get", "name_search"}
    )

    def __init__(self, env: Env, model: Model, ids: Sequence[int] = ()) -> None:
        self.env = env
        self.model = model
        self.ids = list(ids)

    def browse(self, ids: Any) -> Recordset:
        if isinstance(ids, int) and not isinstance(ids, bool):
            ids = [ids]
        if not isinstance(ids, list | tuple) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise builtin_error("TypeError", f"ids must be a list of integers, not {ids!r}")
        return Recordset(self.env, self.model, ids)

    @property
    def _db(self) -> Database:
        return self.env.db

    @property
    def _table(self) -> dict[int, dict[str, Any]]:
        return self._db.records[self.model.name]

    def __repr__(self) -> str:
        return f"{self.model.name}({', '.join(map(str, self.ids))}{',' if len(self.ids) == 1 else ''})"

    # Model methods (@api.model)

    @model_method
    def search(self, domain: Any, offset: int = 0, limit: int | None = None, order: str | None = None) -> list[int]:
        self._check_access("read")
        tree = parse(domain, self.model)
        found = [r for r in self._table.values() if matches(tree, r, self.model, self._db.display_name)]
        if "active" in self.model.fields and not _names_active(domain):
            found = [r for r in found if r.get("active", True)]  # Odoo's active_test: archived records hidden
        found = self._sorted(found, order)
        end = None if limit in (None, False) else offset + int(limit or 0)
        return [r["id"] for r in found[offset:end]]

    @model_method
    def search_count(self, domain: Any, limit: int | None = None) -> int:
        return len(self.search(domain, limit=limit))

    @model_method
    def search_read(
        self,
        domain: Any = None,
        fields: list[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
        **read_kwargs: Any,
    ) -> list[dict[str, Any]]:
        ids = self.search(domain or [], offset=offset, limit=limit, order=order)
        return self.browse(ids).read(fields, **read_kwargs)

    @model_method
    def create(self, vals_list: Any) -> list[int]:
        self._check_access("create")
        batch = [vals_list] if isinstance(vals_list, Mapping) else vals_list
        if not isinstance(batch, list) or not all(isinstance(v, Mapping) for v in batch):
            raise builtin_error("TypeError", "create() expects a dict or a list of dicts of field values")
        return [self._create_one(dict(vals)) for vals in batch]

    @model_method
    def fields_get(self, allfields: list[str] | None = None, attributes: list[str] | None = None) -> dict[str, Any]:
        self._check_access("read")
        described = {}
        for name, field in self.model.fields.items():
            if allfields and name not in allfields:
                continue
            description = field.describe()
            if attributes:
                description = {k: v for k, v in description.items() if k in attributes}
            described[name] = description
        return described

    @model_method
    def name_search(
        self, name: str = "", domain: Any = None, operator: str = "ilike", limit: int = 100
    ) -> list[list[Any]]:
        ids = self.search([*(domain or []), ["name", operator, name]])
        return [[i, self._db.display_name(self.model.name, i)] for i in ids[:limit]]

    # Record methods

    def read(self, fields: list[str] | None = None, load: str = "_classic_read") -> list[dict[str, Any]]:
        self._check_access("read")
        names = list(fields) if fields else list(self.model.fields)
        for name in names:
            if name not in self.model.fields:
                raise builtin_error("ValueError", f"Invalid field {name!r} on model {self.model.name!r}")
        self._check_exist()
        return [self._rendered(self._table[i], names, load) for i in self.ids]

    def write(self, vals: Any) -> bool:
        self._check_access("write")
        if not isinstance(vals, Mapping):
            raise builtin_error("TypeError", "write() expects a dict of field values")
        self._check_exist()
        values = self._converted(dict(vals), creating=False)
        if self.model.name == "ir.model.fields" and set(values) - {"field_description"}:
            raise user_error("Changing the type or name of a field is not supported.")
        for record_id in self.ids:
            record = self._table[record_id]
            record.update(values, write_date=timestamp())
            self._required_set(record)
        return True

    def unlink(self) -> bool:
        self._check_access("unlink")
        self._check_exist()
        for record_id in self.ids:
            if self.model.name == "ir.model.fields":
                self._drop_custom_field(record_id)
            self._release_references(record_id)
            del self._table[record_id]
        return True

    # Helpers

    def _check_access(self, operation: str) -> None:
        if operation == "read" or not self.model.admin_writes or self.env.is_admin:
            return
        raise access_error(
            f"You are not allowed to {_OPERATION_VERBS[operation]} '{self.model.description}' ({self.model.name}) "
            "records.\n\nThis operation is allowed for the following groups:\n\t- Administration/Settings\n\n"
            "Contact your administrator to request access if necessary."
        )

    def _check_exist(self) -> None:
        missing = [i for i in self.ids if i not in self._table]
        if missing:
            gone = Recordset(self.env, self.model, missing)
            raise missing_error(f"Record does not exist or has been deleted.\n(Record: {gone!r}, User: {self.env.uid})")

    def _sorted(self, records: list[dict[str, Any]], order: str | None) -> list[dict[str, Any]]:
        terms = list(self.model.order)
        if order:
            terms = []
            for part in order.split(","):
                fname, _, direction = part.strip().partition(" ")
                if fname not in self.model.fields:
                    raise builtin_error("ValueError", f"Invalid field {fname!r} on model {self.model.name!r}")
                terms.append((fname, direction.strip().lower() == "desc"))
        ordered = list(records)
        for fname, descending in reversed(terms):
            # NULLs last ascending and first descending, as PostgreSQL sorts them.
            ordered.sort(key=functools.partial(_sort_key, self.model.fields[fname]), reverse=descending)
        return ordered

    def _rendered(self, record: dict[str, Any], names: list[str], load: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": record["id"]}
        for name in names:
            field = self.model.fields[name]
            if name == "display_name":
                out[name] = self._db.display_name(self.model.name, record["id"])
            elif field.type == "many2one" and record.get(name) and load == "_classic_read":
                out[name] = [record[name], self._db.display_name(field.relation or "", record[name])]
            else:
                out[name] = record.get(name, field.empty())
        return out

    def _create_one(self, vals: dict[str, Any]) -> int:
        values = self._converted(vals, creating=True)
        for name, field in self.model.fields.items():
            if name not in values and field.default is not None:
                values[name] = self.env.uid if field.default == "uid" else field.default
        self._derive(values)
        if self.model.name == "ir.model.fields":
            return self._create_custom_field(values)
        record = self._db.insert(self.model.name, self._db.new_id(self.model.name), values)
        self._required_set(record)
        return int(record["id"])

    def _converted(self, vals: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """Each value as Odoo stores it; an unknown field, a wrong selection or a dangling many2one raise."""
        vals.pop("id", None)
        out: dict[str, Any] = {}
        for name, value in vals.items():
            field = self.model.fields.get(name)
            if field is None:
                where = f"in {self.model.name!r}" if creating else f"on model {self.model.name!r}"
                raise builtin_error("ValueError", f"Invalid field {name!r} {where}")
            if field.readonly:
                continue  # Odoo ignores values for computed, non-inverse fields
            out[name] = self._value(field, value)
        return out

    def _value(self, field: Field, value: Any) -> Any:
        if value is None or value is False:
            return field.empty()
        if field.type == "selection":
            if value not in {key for key, _ in field.selection}:
                raise builtin_error("ValueError", f"Wrong value for {self.model.name}.{field.name}: {value!r}")
            return value
        if field.type == "many2one":
            return self._target(field, value)
        convert = _CONVERSIONS.get(field.type)
        try:
            return convert(value) if convert else value
        except (TypeError, ValueError) as exc:
            raise builtin_error("ValueError", str(exc)) from None

    def _target(self, field: Field, value: Any) -> int:
        """A many2one's id; a record that does not exist fails as PostgreSQL's foreign key makes Odoo fail."""
        target = value[0] if isinstance(value, list | tuple) and value else value
        if not isinstance(target, int) or isinstance(target, bool):
            raise builtin_error("ValueError", f"Wrong value for {self.model.name}.{field.name}: {value!r}")
        if target not in self._db.records[field.relation or ""]:
            raise validation_error(
                "The operation cannot be completed: another model requires the record being deleted. If "
                f"possible, archive it instead.\n\nModel: {self.model.description} ({self.model.name})\n"
                f"Constraint: {self.model.name.replace('.', '_')}_{field.name}_fkey\n"
            )
        return target

    def _derive(self, values: dict[str, Any]) -> None:
        """What Odoo computes on create: a lead's first stage and its contact details from its customer."""
        if self.model.name != "crm.lead":
            return
        if not values.get("stage_id"):
            stages = self.env["crm.stage"].search([["fold", "=", False]], limit=1)
            values["stage_id"] = stages[0] if stages else False
        partner = self._db.records["res.partner"].get(values.get("partner_id") or 0)
        if partner is not None:
            if not values.get("contact_name") and not partner["is_company"]:
                values["contact_name"] = partner["name"]
            for mine, theirs in (("email_from", "email"), ("phone", "phone")):
                if not values.get(mine) and partner.get(theirs):
                    values[mine] = partner[theirs]

    def _required_set(self, record: dict[str, Any]) -> None:
        if self.model.name == "res.partner" and record.get("type") == "contact" and not record.get("name"):
            raise validation_error("The operation cannot be completed: Contacts require a name")
        for name, field in self.model.fields.items():
            if field.required and record.get(name) in (None, False, ""):
                raise validation_error(
                    "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
                    "- Delete: another model requires the record being deleted. If possible, archive it instead.\n\n"
                    f"Model: {self.model.description} ({self.model.name})\nField: {field.string} ({field.name})"
                )

    def _create_custom_field(self, values: dict[str, Any]) -> int:
        """ir.model.fields.create: the record and, for state manual, the new column on its model."""
        ir_model = self._db.records["ir.model"].get(values.get("model_id") or 0)
        name = str(values.get("name") or "")
        if ir_model is None or not values.get("field_description") or not values.get("ttype"):
            missing = "model_id" if ir_model is None else "field_description" if name else "name"
            raise validation_error(
                "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
                "- Delete: another model requires the record being deleted. If possible, archive it instead.\n\n"
                f"Model: Fields (ir.model.fields)\nField: {missing}"
            )
        if values.get("state", "manual") == "manual" and not name.startswith("x_"):
            raise validation_error(
                "The operation cannot be completed: Custom fields must have a name that starts with 'x_'!"
            )
        model = str(ir_model["model"])
        if name in self._db.models[model].fields:
            raise validation_error("The operation cannot be completed: Field names must be unique per model.")
        if values["ttype"] not in FIELD_TYPES or values["ttype"] in ("selection", "many2one"):
            raise user_error(f"Custom fields of type {values['ttype']!r} are not supported by the sandbox.")
        custom = CustomFieldSeed(
            model=model, name=name, ttype=values["ttype"], field_description=str(values["field_description"])
        )
        return self._db.create_custom_field(custom)

    def _drop_custom_field(self, record_id: int) -> None:
        record = self._table[record_id]
        if record["state"] != "manual":
            raise user_error("This column contains module data and cannot be removed!")
        self._db.drop_field(str(record["model"]), str(record["name"]))

    def _release_references(self, record_id: int) -> None:
        """ondelete: a required many2one to the record forbids deleting it, an optional one is emptied."""
        for model in self._db.models.values():
            for field in model.fields.values():
                if field.type != "many2one" or field.relation != self.model.name:
                    continue
                for other in self._db.records[model.name].values():
                    if other.get(field.name) != record_id:
                        continue
                    if field.required:
                        raise validation_error(
                            "The operation cannot be completed: another model requires the record being deleted. "
                            f"If possible, archive it instead.\n\nModel: {model.description} ({model.name})\n"
                            f"Constraint: {model.name.replace('.', '_')}_{field.name}_fkey\n"
                        )
                    other[field.name] = False


def _names_active(domain: Any) -> bool:
    """Whether a domain says anything about `active` (then Odoo lists archived records as it asks)."""
    return isinstance(domain, list | tuple) and any(
        isinstance(term, list | tuple) and len(term) == 3 and term[0] == "active" for term in domain
    )


def _sort_key(field: Field, record: dict[str, Any]) -> tuple[bool, Any]:
    value = record.get(field.name)
    empty = value is None or value == "" or (value is False and field.type != "boolean")
    return (empty, 0 if empty else value)


def public_method(records: Recordset, name: str) -> Callable[..., Any]:
    """`get_public_method`: private names raise AccessError, unknown ones AttributeError."""
    if name.startswith("_"):
        raise access_error(f"Private methods (such as '{records.model.name}.{name}') cannot be called remotely.")
    if name not in Recordset.PUBLIC:
        raise builtin_error("AttributeError", f"The method '{records.model.name}.{name}' does not exist")
    method: Callable[..., Any] = getattr(Recordset, name)
    return method


def is_model_method(method: Callable[..., Any]) -> bool:
    return bool(getattr(method, "_api_model", False))


__all__ = ["WRITE_METHODS", "Env", "OdooFault", "Recordset", "is_model_method", "public_method"]
