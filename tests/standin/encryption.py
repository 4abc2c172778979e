"""Voice Recording Encryption as Twilio documents it: media AES-256-GCM encrypted with a fresh key
(the 16-byte tag appended to the ciphertext), that key RSA-OAEP (SHA-256) encrypted to the account's public key."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def public_key(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("public_key must be an RSA public key in PEM")
    return key


def encrypt(pem: bytes, public_key_sid: str, plaintext: bytes) -> tuple[bytes, dict[str, str]]:
    """(the media as served: ciphertext then tag, the recording's `encryption_details`)."""
    cek, iv = AESGCM.generate_key(bit_length=256), os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, None)  # the tag is its last 16 bytes
    wrapped = public_key(pem).encrypt(cek, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    return sealed, {
        "encryption_iv": base64.b64encode(iv).decode(),
        "encryption_cek": base64.b64encode(wrapped).decode(),
        "encryption_public_key_sid": public_key_sid,
    }
