"""Webhook signature check: Ed25519 (current) and RSA-SHA256 (legacy), never raising on bad input."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from sync_core.webhook_signature import (
    GHL_ED25519_PUBLIC_KEY_PEM,
    GHL_RSA_PUBLIC_KEY_PEM,
    verify_signature,
)

BODY = b'{"type":"AppointmentCreate","locationId":"loc1","webhookId":"wh1","appointment":{"id":"ev1"}}'


@dataclass(frozen=True)
class Signer:
    ed25519_key: ed25519.Ed25519PrivateKey
    rsa_key: rsa.RSAPrivateKey

    @property
    def ed25519_pem(self) -> str:
        return _pem(self.ed25519_key.public_key())

    @property
    def rsa_pem(self) -> str:
        return _pem(self.rsa_key.public_key())

    def ed25519(self, body: bytes) -> str:
        return base64.b64encode(self.ed25519_key.sign(body)).decode()

    def rsa(self, body: bytes) -> str:
        return base64.b64encode(self.rsa_key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()

    def keys(self) -> dict[str, str]:
        return {"ed25519_public_pem": self.ed25519_pem, "rsa_public_pem": self.rsa_pem}


def _pem(key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(ed25519.Ed25519PrivateKey.generate(), rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.mark.parametrize("header", ["X-GHL-Signature", "x-ghl-signature", "X-Ghl-Signature"])
def test_ed25519_signed_delivery_is_accepted_whatever_the_header_case(signer: Signer, header: str) -> None:
    check = verify_signature(BODY, {header: signer.ed25519(BODY)}, **signer.keys())
    assert (check.valid, check.scheme, check.reason) == (True, "ed25519", "ok")


@pytest.mark.parametrize("header", ["x-wh-signature", "X-WH-Signature"])
def test_legacy_rsa_signed_delivery_is_accepted(signer: Signer, header: str) -> None:
    check = verify_signature(BODY, {header: signer.rsa(BODY)}, **signer.keys())
    assert (check.valid, check.scheme) == (True, "rsa")


def test_tampered_body_is_rejected_under_ed25519(signer: Signer) -> None:
    tampered = BODY.replace(b"ev1", b"ev2")
    check = verify_signature(tampered, {"X-GHL-Signature": signer.ed25519(BODY)}, **signer.keys())
    assert (check.valid, check.reason) == (False, "signature_mismatch")


def test_tampered_body_is_rejected_under_rsa(signer: Signer) -> None:
    tampered = BODY + b" "
    check = verify_signature(tampered, {"x-wh-signature": signer.rsa(BODY)}, **signer.keys())
    assert (check.valid, check.reason) == (False, "signature_mismatch")


def test_signature_by_another_key_is_rejected(signer: Signer) -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    forged = base64.b64encode(stranger.sign(BODY)).decode()
    assert not verify_signature(BODY, {"X-GHL-Signature": forged}, **signer.keys()).valid


def test_ed25519_header_decides_when_both_are_present(signer: Signer) -> None:
    headers = {"X-GHL-Signature": signer.ed25519(b"other body"), "x-wh-signature": signer.rsa(BODY)}
    check = verify_signature(BODY, headers, **signer.keys())
    assert (check.valid, check.scheme) == (False, "ed25519")


def test_unsigned_delivery_is_rejected(signer: Signer) -> None:
    check = verify_signature(BODY, {"Content-Type": "application/json"}, **signer.keys())
    assert (check.valid, check.scheme, check.reason) == (False, None, "missing_signature")


@pytest.mark.parametrize("garbage", ["not base64!!", "", "====", "abc"])
def test_malformed_signature_is_rejected_without_raising(signer: Signer, garbage: str) -> None:
    check = verify_signature(BODY, {"X-GHL-Signature": garbage}, **signer.keys())
    assert (check.valid, check.reason) == (False, "malformed_signature")


def test_wrong_length_signature_is_a_mismatch_not_a_crash(signer: Signer) -> None:
    short = base64.b64encode(b"\x00" * 10).decode()
    assert verify_signature(BODY, {"x-wh-signature": short}, **signer.keys()).reason == "signature_mismatch"


@pytest.mark.parametrize("pem", ["not a pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "ñ"])
def test_broken_configured_key_rejects_instead_of_raising(signer: Signer, pem: str) -> None:
    check = verify_signature(BODY, {"X-GHL-Signature": signer.ed25519(BODY)}, ed25519_public_pem=pem)
    assert (check.valid, check.reason) == (False, "invalid_public_key")


def test_a_key_of_the_wrong_type_is_rejected(signer: Signer) -> None:
    check = verify_signature(BODY, {"X-GHL-Signature": signer.ed25519(BODY)}, ed25519_public_pem=signer.rsa_pem)
    assert (check.valid, check.reason) == (False, "invalid_public_key")


def test_one_line_key_forms_from_app_settings_are_accepted(signer: Signer) -> None:
    escaped = signer.ed25519_pem.strip().replace("\n", "\\n")
    bare = "".join(signer.ed25519_pem.strip().splitlines()[1:-1])
    spaced = signer.rsa_pem.strip().replace("\n", " ")
    assert verify_signature(BODY, {"X-GHL-Signature": signer.ed25519(BODY)}, ed25519_public_pem=escaped).valid
    assert verify_signature(BODY, {"X-GHL-Signature": signer.ed25519(BODY)}, ed25519_public_pem=bare).valid
    assert verify_signature(BODY, {"x-wh-signature": signer.rsa(BODY)}, rsa_public_pem=spaced).valid


def test_ghl_published_keys_are_the_defaults_and_load() -> None:
    ed_key = serialization.load_pem_public_key(GHL_ED25519_PUBLIC_KEY_PEM.encode())
    rsa_key = serialization.load_pem_public_key(GHL_RSA_PUBLIC_KEY_PEM.encode())
    assert isinstance(ed_key, ed25519.Ed25519PublicKey)
    assert isinstance(rsa_key, rsa.RSAPublicKey) and rsa_key.key_size == 4096
    zero_sig = base64.b64encode(b"\x00" * 64).decode()
    assert verify_signature(BODY, {"X-GHL-Signature": zero_sig}).reason == "signature_mismatch"
    assert verify_signature(BODY, {"x-wh-signature": zero_sig}).reason == "signature_mismatch"
