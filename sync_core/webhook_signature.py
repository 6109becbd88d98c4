"""GHL webhook signature check over the raw body: Ed25519 `X-GHL-Signature`, else legacy RSA."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

ED25519_HEADER = "x-ghl-signature"
RSA_HEADER = "x-wh-signature"

# GHL's published keys (see shared/ghl-openapi/FACTS.md); configurable because GHL announces rotations.
GHL_ED25519_PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAi2HR1srL4o18O8BRa7gVJY7G7bupbN3H9AwJrHCDiOg=
-----END PUBLIC KEY-----
"""

GHL_RSA_PUBLIC_KEY_PEM = """-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
"""

Scheme = Literal["ed25519", "rsa"]
_PEM_MARKERS = re.compile(r"-----(?:BEGIN|END) PUBLIC KEY-----")


class SignatureCheck(BaseModel):
    """The verdict on one delivery; `reason` is a short English code safe to log."""

    model_config = ConfigDict(frozen=True)

    valid: bool
    scheme: Scheme | None
    reason: str


def verify_signature(
    raw_body: bytes,
    headers: Mapping[str, str],
    *,
    ed25519_public_pem: str = GHL_ED25519_PUBLIC_KEY_PEM,
    rsa_public_pem: str = GHL_RSA_PUBLIC_KEY_PEM,
) -> SignatureCheck:
    """Check the signature GHL put on `raw_body`; never raises.

    When `X-GHL-Signature` is present it alone decides (GHL's current scheme); the legacy RSA header
    is only consulted when it is absent. Header names are case-insensitive.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    if ED25519_HEADER in lowered:
        return _check("ed25519", raw_body, lowered[ED25519_HEADER], ed25519_public_pem)
    if RSA_HEADER in lowered:
        return _check("rsa", raw_body, lowered[RSA_HEADER], rsa_public_pem)
    return SignatureCheck(valid=False, scheme=None, reason="missing_signature")


def _check(scheme: Scheme, raw_body: bytes, header_value: str, public_pem: str) -> SignatureCheck:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    try:
        signature = base64.b64decode("".join(header_value.split()), validate=True)
    except (binascii.Error, ValueError):
        return SignatureCheck(valid=False, scheme=scheme, reason="malformed_signature")
    if not signature:
        return SignatureCheck(valid=False, scheme=scheme, reason="malformed_signature")
    key = _load_public_key(public_pem)
    try:
        if scheme == "ed25519" and isinstance(key, Ed25519PublicKey):
            key.verify(signature, raw_body)
        elif scheme == "rsa" and isinstance(key, RSAPublicKey):
            key.verify(signature, raw_body, padding.PKCS1v15(), hashes.SHA256())
        else:
            return SignatureCheck(valid=False, scheme=scheme, reason="invalid_public_key")
    except InvalidSignature:
        return SignatureCheck(valid=False, scheme=scheme, reason="signature_mismatch")
    return SignatureCheck(valid=True, scheme=scheme, reason="ok")


@lru_cache(maxsize=8)
def _load_public_key(public_pem: str) -> PublicKeyTypes | None:
    """Load an SPKI PEM key, also in the one-line forms app settings hold (escaped newlines, bare base64)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = public_pem.replace("\\n", "\n").strip()
    if "\n" not in text:
        body = "".join(_PEM_MARKERS.sub("", text).split())
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        text = f"-----BEGIN PUBLIC KEY-----\n{lines}\n-----END PUBLIC KEY-----"
    try:
        return load_pem_public_key(text.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
        return None
