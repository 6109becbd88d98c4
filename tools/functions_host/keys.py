"""Function and master keys of the local host, and the auth-level check made before each HTTP invocation."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

FUNCTION_KEY_SETTING = "LOCAL_FUNCTION_KEY"
MASTER_KEY_SETTING = "LOCAL_MASTER_KEY"


def _configured(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in environ.get(name, "").split(",") if key.strip())


@dataclass(frozen=True)
class HostKeys:
    """`function` level accepts a function key or the master key; `admin` level only the master key."""

    function_keys: tuple[str, ...]
    master_key: str
    generated: tuple[str, ...] = ()  # settings whose value was generated for this run

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> HostKeys:
        """Keys from the environment / local settings; a missing one is generated for this run (the host is
        never left open) and listed in `generated` so the start-up banner can show it once."""
        function_keys = _configured(environ, FUNCTION_KEY_SETTING)
        master_keys = _configured(environ, MASTER_KEY_SETTING)
        generated = []
        if not function_keys:
            function_keys = (secrets.token_urlsafe(32),)
            generated.append(FUNCTION_KEY_SETTING)
        if not master_keys:
            master_keys = (secrets.token_urlsafe(32),)
            generated.append(MASTER_KEY_SETTING)
        return cls(function_keys=function_keys, master_key=master_keys[0], generated=tuple(generated))

    def authorizes(self, auth_level: str, headers: Mapping[str, str], query_string: str) -> bool:
        """`headers` has lower-case names. The key is `x-functions-key`, else the `code` query param."""
        if auth_level == "anonymous":
            return True
        presented = headers.get("x-functions-key")
        if presented is None:
            presented = next((v for k, v in parse_qsl(query_string, keep_blank_values=True) if k == "code"), None)
        if not presented:
            return False
        accepted = (self.master_key,) if auth_level == "admin" else (*self.function_keys, self.master_key)
        # Compare against every key so the time taken does not reveal which one nearly matched.
        # As bytes: compare_digest raises on non-ASCII str, and a header may carry any latin-1 byte.
        given = presented.encode("utf-8", "surrogatepass")
        matches = [hmac.compare_digest(given, key.encode("utf-8", "surrogatepass")) for key in accepted]
        return any(matches)
