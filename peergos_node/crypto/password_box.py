"""Secrets encrypted under a password (Java `PasswordProtected`, used for the PKI node's key file,
spec/peergos.md §3.3 `pki-init`).

Layout: `salt(16) || nonce(24) || secretbox(data)`, key = scrypt(utf8(password), salt, N=2^17, r=8, p=1,
32 bytes). A wrong password or a damaged file is `BadCiphertext`.
"""

from __future__ import annotations

import hashlib

from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.symmetric import NONCE_BYTES, secretbox_decrypt, secretbox_encrypt
from peergos_node.errors import BadCiphertext

SALT_BYTES = 16
_N, _R, _P = 1 << 17, 8, 1


def _key(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32, maxmem=256 * 1024 * 1024)


def seal_with_password(password: str, data: bytes, rng: Rng = SYSTEM_RNG) -> bytes:
    """Encrypt `data` under a key derived from `password`."""
    if not password:
        raise ValueError("an empty password protects nothing")
    salt = rng.random_bytes(SALT_BYTES)
    nonce = rng.random_bytes(NONCE_BYTES)
    return salt + nonce + secretbox_encrypt(data, nonce, _key(password, salt))


def open_with_password(password: str, blob: bytes) -> bytes:
    """Decrypt what `seal_with_password` produced (BadCiphertext on a wrong password)."""
    if len(blob) < SALT_BYTES + NONCE_BYTES + 16:
        raise BadCiphertext("password-protected data is truncated")
    salt, nonce, box = (
        blob[:SALT_BYTES],
        blob[SALT_BYTES : SALT_BYTES + NONCE_BYTES],
        blob[SALT_BYTES + NONCE_BYTES :],
    )
    return secretbox_decrypt(box, nonce, _key(password, salt))
