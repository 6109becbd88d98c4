"""Settings of the Odoo sandbox: its demo database (users, API keys, stages, custom fields) and its faults."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEMO_DB = "miasalud"
# API keys are 160-bit random hex strings in Odoo; these two only ever open the sandbox.
DEMO_API_LOGIN = "integracion.manychat@miasalud.example"
DEMO_API_KEY = "5a1d0e0f5c3b4e2a9d7c6b5a4f3e2d1c0b9a8f7e"
DEMO_ADMIN_LOGIN = "admin"
DEMO_ADMIN_KEY = "0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"
DEMO_STAGES = ("Nuevo", "Calificado", "Propuesta", "Ganado")
SERVER_VERSION = "19.0"
SERVER_VERSION_INFO = (19, 0, 0, "final", 0, "")

FaultKind = Literal[
    "access_denied",  # the key is refused: authenticate answers false, calls AccessDenied, JSON-2 401
    "access_error",  # odoo.exceptions.AccessError on the ORM call
    "validation_error",  # odoo.exceptions.ValidationError on a create, write or unlink (nothing applied)
    "serialization_failure",  # psycopg2's SerializationFailure after Odoo's own retries (rolled back)
    "server_error",  # an HTML 5xx page from the server or a proxy in front of it (nothing applied)
    "reset",  # the connection is reset before any answer (nothing applied)
    "timeout",  # no answer until the client gives up (nothing applied)
    "slow",  # the answer comes after `delay_ms`
    "applied_then_dropped",  # a create, write or unlink is applied, then the connection is cut before the answer
]
ApiProtocol = Literal["jsonrpc", "json2"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class UserSeed(_Section):
    id: int = Field(gt=0)
    name: str
    login: str
    partner_id: int = Field(gt=0)
    password: str | None = None
    api_keys: list[str] = Field(default_factory=list)
    admin: bool = False  # Administration/Settings: may change users, models and fields


class StageSeed(_Section):
    id: int = Field(gt=0)
    name: str
    sequence: int = 1
    is_won: bool = False
    fold: bool = False


class CustomFieldSeed(_Section):
    """An `x_` field created through ir.model.fields (state manual)."""

    model: str
    name: str
    ttype: Literal["char", "text", "integer", "boolean", "float", "date", "datetime"]
    field_description: str


class SeedSpec(_Section):
    company_name: str = "MiaSalud"
    users: list[UserSeed] = Field(default_factory=list)
    stages: list[StageSeed] = Field(default_factory=list)
    custom_fields: list[CustomFieldSeed] = Field(default_factory=list)
    # Records in Odoo's field names, created as the admin after the rest ({"model": ..., "values": {...}}).
    records: list[dict[str, Any]] = Field(default_factory=list)


class FaultRule(_Section):
    """One fault for the calls it matches: every one (probability 1), a random share, or a count of them."""

    kind: FaultKind
    models: list[str] = Field(default_factory=list)  # empty: any model, and the `common` service's calls
    methods: list[str] = Field(default_factory=list)  # empty: any method ("create", "search_read", "authenticate")
    protocols: list[ApiProtocol] = Field(default_factory=list)  # empty: both
    probability: float = Field(1.0, ge=0, le=1)  # drawn per matching call from the seeded generator
    count: int | None = Field(None, ge=0)  # only the next `count` matching calls (the probability is then ignored)
    after: int = Field(0, ge=0)  # matching calls let through before the rule applies
    status: Literal[500, 502, 503, 504] = 503  # of a server_error
    delay_ms: float = Field(0.0, ge=0)  # of a slow answer; added before any other kind too


class FaultConfig(_Section):
    seed: int = 0
    hang_seconds: float = Field(30.0, gt=0)  # how long a timeout holds the request when the client waits longer
    rules: list[FaultRule] = Field(default_factory=list)


class BehaviourConfig(_Section):
    # The JSON-RPC error envelope's `code`: Odoo 15-17 send 200, later versions 0; clients must not read it.
    jsonrpc_error_code: int = 200


DEMO_SEED = SeedSpec(
    users=[
        UserSeed(
            id=2, name="Administrador", login=DEMO_ADMIN_LOGIN, partner_id=3, password="admin",
            api_keys=[DEMO_ADMIN_KEY], admin=True,
        ),
        UserSeed(id=6, name="Integración ManyChat", login=DEMO_API_LOGIN, partner_id=7, api_keys=[DEMO_API_KEY]),
        UserSeed(id=7, name="Laura Méndez", login="laura.mendez@miasalud.example", partner_id=8),
        UserSeed(id=8, name="Carlos Ruiz", login="carlos.ruiz@miasalud.example", partner_id=9),
    ],
    stages=[
        StageSeed(id=1, name="Nuevo", sequence=1),
        StageSeed(id=2, name="Calificado", sequence=2),
        StageSeed(id=3, name="Propuesta", sequence=3),
        StageSeed(id=4, name="Ganado", sequence=70, is_won=True, fold=True),
    ],
    custom_fields=[
        CustomFieldSeed(model="res.partner", name="x_manychat_id", ttype="char", field_description="ManyChat ID"),
        CustomFieldSeed(model="crm.lead", name="x_manychat_id", ttype="char", field_description="ManyChat ID"),
        CustomFieldSeed(model="crm.lead", name="x_campaign_id", ttype="integer", field_description="Campaña"),
    ],
)  # fmt: skip


class SandboxConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 8069
    db: str = DEMO_DB
    seed: SeedSpec = Field(default_factory=lambda: DEMO_SEED.model_copy(deep=True))
    faults: FaultConfig = Field(default_factory=FaultConfig)
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig)

    @classmethod
    def from_file(cls, path: Path) -> SandboxConfig:
        """Read a JSON or TOML file with the same keys as this model."""
        raw = path.read_bytes()
        data: Any = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
        return cls.model_validate(data)


RUNTIME_SECTIONS = ("faults", "behaviour")
