"""A local stand-in for GoHighLevel's API v2 (LeadConnector): same wire format, no account, no internet.

with SandboxServer(SandboxConfig(seed=DEMO_SEED)) as sb:
    httpx.get(f"{sb.url}/calendars/?locationId=loc_demo", headers=...)
    sb.admin.state()
"""

from .config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_LOCATION_ID,
    DEMO_PRIVATE_TOKEN,
    DEMO_SEED,
    SandboxConfig,
    SeedSpec,
)
from .keys import PublicKeys, load_public_keys
from .server import AdminClient, SandboxServer, ThreadedServer

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_LOCATION_ID",
    "DEMO_PRIVATE_TOKEN",
    "DEMO_SEED",
    "AdminClient",
    "PublicKeys",
    "SandboxConfig",
    "SandboxServer",
    "SeedSpec",
    "ThreadedServer",
    "load_public_keys",
]
