"""The sandbox's one Odoo database: its models and records, its users and their API keys.

Handlers change it without awaiting in between, so on uvicorn's single event loop each call is atomic; a call
that fails is rolled back whole (`transaction`), as Odoo discards the SQL transaction of a failed request.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .config import CustomFieldSeed, SeedSpec
from .models import Field, Model, demo_models


@dataclass
class ApiKey:
    user_id: int
    expired: bool = False


def timestamp() -> str:
    """Now as Odoo answers datetimes: UTC, `YYYY-MM-DD HH:MM:SS`."""
    return datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%d %H:%M:%S")


class Database:
    def __init__(self, name: str, seed: SeedSpec) -> None:
        self.name = name
        self.models: dict[str, Model] = demo_models()
        self.records: dict[str, dict[int, dict[str, Any]]] = {model: {} for model in self.models}
        self.api_keys: dict[str, ApiKey] = {}
        self.passwords: dict[int, str] = {}
        self.admins: set[int] = set()
        self._load(seed)

    # Records

    def new_id(self, model: str) -> int:
        return max(self.records[model], default=0) + 1

    def insert(self, model: str, record_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """A record with every field of the model (empty where not given), stamped now."""
        fields = self.models[model].fields
        now = timestamp()
        record = {
            name: f.default if f.default not in (None, "uid") else f.empty()
            for name, f in fields.items()
            if name != "display_name"
        }
        record.update(values, id=record_id, create_date=now, write_date=now)
        self.records[model][record_id] = record
        return record

    def display_name(self, model: str, record_id: int) -> str:
        record = self.records.get(model, {}).get(record_id)
        if record is None:
            return ""
        if model == "ir.model.fields":
            return f"{record['field_description']} ({record['model']})"
        return str(record.get("name") or "")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Undo every change made inside when it raises."""
        saved = (copy.deepcopy(self.records), copy.deepcopy(self.models))
        try:
            yield
        except BaseException:
            self.records, self.models = saved
            raise

    # Custom fields (ir.model.fields, state manual)

    def add_field(self, model: str, field: Field) -> None:
        self.models[model].fields[field.name] = field
        for record in self.records[model].values():
            record[field.name] = field.empty()

    def drop_field(self, model: str, name: str) -> None:
        self.models[model].fields.pop(name, None)
        for record in self.records[model].values():
            record.pop(name, None)

    def model_id(self, model: str) -> int | None:
        return next((rid for rid, r in self.records["ir.model"].items() if r["model"] == model), None)

    # Users

    def user_of_key(self, key: str | None) -> int | None:
        """The user an API key belongs to; None for an unknown or expired key."""
        found = self.api_keys.get(key or "")
        return found.user_id if found is not None and not found.expired else None

    def check_credentials(self, user_id: int, secret: str | None) -> bool:
        """Password or API key, as `res.users._check_credentials` accepts either over RPC."""
        if not secret or user_id not in self.records["res.users"]:
            return False
        return self.passwords.get(user_id) == secret or self.user_of_key(secret) == user_id

    def login(self, login: str, secret: str | None) -> int | None:
        for user_id, user in self.records["res.users"].items():
            if user["login"] == login and user["active"]:
                return user_id if self.check_credentials(user_id, secret) else None
        return None

    def login_of(self, user_id: int | None) -> str | None:
        user = self.records["res.users"].get(user_id or 0)
        return str(user["login"]) if user else None

    # Seeding

    def _load(self, seed: SeedSpec) -> None:
        for model_id, model in enumerate(self.models.values(), start=1):
            self.insert("ir.model", model_id, {"name": model.description, "model": model.name, "state": "base"})
        for model in self.models.values():
            for field in model.fields.values():
                self._field_record(model.name, field, state="base")
        self.insert("res.partner", 1, {"name": seed.company_name, "is_company": True, "type": "contact"})
        for user in seed.users:
            self.insert("res.partner", user.partner_id, {"name": user.name, "email": user.login, "type": "contact"})
            self.insert("res.users", user.id, {"name": user.name, "login": user.login, "partner_id": user.partner_id})
            if user.password:
                self.passwords[user.id] = user.password
            for key in user.api_keys:
                self.api_keys[key] = ApiKey(user.id)
            if user.admin:
                self.admins.add(user.id)
        for stage in seed.stages:
            self.insert("crm.stage", stage.id, stage.model_dump(exclude={"id"}))
        for custom in seed.custom_fields:
            self.create_custom_field(custom)

    def create_custom_field(self, custom: CustomFieldSeed) -> int:
        field = Field(custom.name, custom.ttype, custom.field_description, manual=True)
        self.add_field(custom.model, field)
        return self._field_record(custom.model, field, state="manual")

    def _field_record(self, model: str, field: Field, *, state: str) -> int:
        record_id = self.new_id("ir.model.fields")
        values = {
            "name": field.name,
            "field_description": field.string,
            "model": model,
            "model_id": self.model_id(model),
            "ttype": field.type,
            "state": state,
            "required": field.required,
            "readonly": field.readonly,
            "relation": field.relation or False,
        }
        self.insert("ir.model.fields", record_id, values)
        return record_id
