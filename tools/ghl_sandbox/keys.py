"""The sandbox's own webhook signing key pairs (Ed25519 and RSA), kept as PEM files in a key directory."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

ED25519_PRIVATE = "ed25519_private.pem"
ED25519_PUBLIC = "ed25519_public.pem"
RSA_PRIVATE = "rsa_private.pem"
RSA_PUBLIC = "rsa_public.pem"


@dataclass(frozen=True)
class PublicKeys:
    """SPKI PEM public keys, the form the app's GHL_WEBHOOK_ED25519_KEY / GHL_WEBHOOK_RSA_KEY take."""

    ed25519_pem: str
    rsa_pem: str


class SigningKeys:
    def __init__(self, ed25519_key: ed25519.Ed25519PrivateKey, rsa_key: rsa.RSAPrivateKey) -> None:
        self._ed25519 = ed25519_key
        self._rsa = rsa_key

    def sign_ed25519(self, body: bytes) -> str:
        return base64.b64encode(self._ed25519.sign(body)).decode()

    def sign_rsa(self, body: bytes) -> str:
        return base64.b64encode(self._rsa.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()

    def private_pems(self) -> tuple[bytes, bytes]:
        """Ed25519 and RSA private keys as unencrypted PKCS#8 PEM."""
        pem, pkcs8, plain = (
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return self._ed25519.private_bytes(pem, pkcs8, plain), self._rsa.private_bytes(pem, pkcs8, plain)

    def public_keys(self) -> PublicKeys:
        return PublicKeys(_public_pem(self._ed25519.public_key()), _public_pem(self._rsa.public_key()))

    @classmethod
    def generate(cls, rsa_bits: int = 2048) -> SigningKeys:
        return cls(ed25519.Ed25519PrivateKey.generate(), rsa.generate_private_key(65537, rsa_bits))


class KeyStore:
    """The key pairs of one key directory, created on first use; plus a stranger's pair for bad signatures."""

    def __init__(self, key_dir: Path, rsa_bits: int) -> None:
        self.key_dir = key_dir
        self.signing = _load_or_create(key_dir, rsa_bits)

    @cached_property
    def impostor(self) -> SigningKeys:
        return SigningKeys.generate()


def load_public_keys(key_dir: Path) -> PublicKeys:
    """Read the public keys a sandbox wrote into `key_dir` (the same ones `/_sandbox/keys` serves)."""
    return PublicKeys((key_dir / ED25519_PUBLIC).read_text(), (key_dir / RSA_PUBLIC).read_text())


def _public_pem(key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _load_or_create(key_dir: Path, rsa_bits: int) -> SigningKeys:
    ed_path, rsa_path = key_dir / ED25519_PRIVATE, key_dir / RSA_PRIVATE
    if ed_path.exists() and rsa_path.exists():
        ed_key = serialization.load_pem_private_key(ed_path.read_bytes(), password=None)
        rsa_key = serialization.load_pem_private_key(rsa_path.read_bytes(), password=None)
        if not isinstance(ed_key, ed25519.Ed25519PrivateKey) or not isinstance(rsa_key, rsa.RSAPrivateKey):
            raise ValueError(f"unexpected key types in {key_dir}")
        return SigningKeys(ed_key, rsa_key)
    keys = SigningKeys.generate(rsa_bits)
    key_dir.mkdir(parents=True, exist_ok=True)
    for path, pem in zip((ed_path, rsa_path), keys.private_pems(), strict=True):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    public = keys.public_keys()
    (key_dir / ED25519_PUBLIC).write_text(public.ed25519_pem)
    (key_dir / RSA_PUBLIC).write_text(public.rsa_pem)
    return keys
