"""A separate host process for the concurrent-refresh test: refreshes at an agreed moment, prints a fingerprint."""

from __future__ import annotations

import hashlib
import sys
import time

from azure.data.tables import TableClient
from pydantic import SecretStr

from shared.ghl.oauth import OAuthApp
from shared.ghl.token_store import TokenStore
from shared.ghl.tokens import OAuthTokenProvider
from tools.ghl_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_LOCATION_ID

# python -m tests.integration.ghl_client.refresh_worker SANDBOX_URL CONNECTION_STRING TABLE REJECTED_TOKEN START_AT
# It prints the SHA-256 of the access token it ends up with, never the token.


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def main(argv: list[str]) -> int:
    sandbox_url, connection_string, table_name, rejected, start_at = argv
    app = OAuthApp(
        base_url=sandbox_url,
        marketplace_url=sandbox_url,
        client_id=DEMO_CLIENT_ID,
        client_secret=SecretStr(DEMO_CLIENT_SECRET),
    )
    provider = OAuthTokenProvider(TokenStore(TableClient.from_connection_string(connection_string, table_name)), app)
    time.sleep(max(0.0, float(start_at) - time.time()))
    print(fingerprint(provider.refresh(DEMO_LOCATION_ID, rejected)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
