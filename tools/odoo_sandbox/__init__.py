"""A local stand-in for Odoo 19's external APIs (JSON-RPC and JSON-2): same envelopes, a demo CRM database, per-call
recording and fault injection, no Odoo, no PostgreSQL.

with SandboxServer() as sb:
    httpx.post(f"{sb.url}/json/2/res.partner/search_read", headers={"Authorization": f"bearer {DEMO_API_KEY}"}, ...)
    sb.admin.calls()
"""

from .config import (
    DEMO_ADMIN_KEY,
    DEMO_ADMIN_LOGIN,
    DEMO_API_KEY,
    DEMO_API_LOGIN,
    DEMO_DB,
    DEMO_SEED,
    DEMO_STAGES,
    FaultConfig,
    FaultRule,
    SandboxConfig,
    SeedSpec,
)
from .server import AdminClient, SandboxServer

__all__ = [
    "DEMO_ADMIN_KEY",
    "DEMO_ADMIN_LOGIN",
    "DEMO_API_KEY",
    "DEMO_API_LOGIN",
    "DEMO_DB",
    "DEMO_SEED",
    "DEMO_STAGES",
    "AdminClient",
    "FaultConfig",
    "FaultRule",
    "SandboxConfig",
    "SandboxServer",
    "SeedSpec",
]
