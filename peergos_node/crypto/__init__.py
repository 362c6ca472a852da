"""Peergos-compatible cryptography (spec/peergos.md §1, §2.1, §7; design.md §4.11).

This package is the only one in peergos_node that imports `nacl` or `cryptography` (a layering test
enforces it). Everything is byte-for-byte compatible with Peergos 1.32 and checked against the reference
vectors in `../shared/vectors`.

Modules
-------
- `rng`             injectable randomness: `Rng` protocol, `SystemRng`, `DeterministicRng`, `ScriptedRng`
- `hashes`          sha256, HMAC-SHA256, Peergos' one-block HKDF
- `symmetric`       `SymmetricKey`, secretbox (tag || ciphertext), `CipherText`, `PaddedCipherText`,
                    `SymmetricLink`
- `signing`         Ed25519 `PublicSigningKey`, `SecretSigningKey`, `SigningKeyPair`; attached and
                    detached signatures
- `public_key_hash` `PublicKeyHash` (identity CIDs of keys), `SigningPrivateKeyAndPublicHash`
- `mlkem`           FIPS 203 ML-KEM-1024 with Peergos' expanded secret-key format
- `boxing`          Curve25519 and hybrid Curve25519+ML-KEM boxing keys, `BoxingKeyPair`
- `login`           `SecretGenerationAlgorithm`, scrypt login and secret-link key derivation
- `pow`             `ProofOfWork` with Java's difficulty quirk
- `bat`             `Bat`, `BatId` (three derivations), `BatWithId`, raw-block BAT prefixes
- `block_auth`      `BlockAuth`, S3 SigV4 block auth create/verify, `allow_read`

Errors (peergos_node.errors): `DecodeError` for malformed input, `BadSignature`, `BadCiphertext`,
`AuthError`, `ProofOfWorkError`.
"""

from peergos_node.crypto.bat import Bat, BatId, BatWithId
from peergos_node.crypto.block_auth import BlockAuth
from peergos_node.crypto.boxing import (
    BoxingKeyPair,
    Curve25519PublicKey,
    Curve25519SecretKey,
    HybridPublicKey,
    HybridSecretKey,
    PublicBoxingKey,
    SecretBoxingKey,
)
from peergos_node.crypto.login import LoginKeys, SecretGenerationAlgorithm, derive_login_keys
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash, SigningPrivateKeyAndPublicHash
from peergos_node.crypto.rng import SYSTEM_RNG, DeterministicRng, Rng, ScriptedRng, SystemRng
from peergos_node.crypto.signing import PublicSigningKey, SecretSigningKey, SigningKeyPair
from peergos_node.crypto.symmetric import CipherText, PaddedCipherText, SymmetricKey, SymmetricLink

__all__ = [
    "SYSTEM_RNG",
    "Bat",
    "BatId",
    "BatWithId",
    "BlockAuth",
    "BoxingKeyPair",
    "CipherText",
    "Curve25519PublicKey",
    "Curve25519SecretKey",
    "DeterministicRng",
    "HybridPublicKey",
    "HybridSecretKey",
    "LoginKeys",
    "PaddedCipherText",
    "ProofOfWork",
    "PublicBoxingKey",
    "PublicKeyHash",
    "PublicSigningKey",
    "Rng",
    "ScriptedRng",
    "SecretBoxingKey",
    "SecretGenerationAlgorithm",
    "SecretSigningKey",
    "SigningKeyPair",
    "SigningPrivateKeyAndPublicHash",
    "SymmetricKey",
    "SymmetricLink",
    "SystemRng",
    "derive_login_keys",
]
