"""Error tree of peergos_node.

    PeergosError
    ├── DecodeError            (re-exported from nabu_py.errors: malformed bytes or text from outside)
    ├── BadSignature           a signature does not verify (forged, wrong key, tampered)
    ├── BadCiphertext          authenticated decryption failed (wrong key or tampered cipher text)
    ├── AuthError              a request's authorisation (BAT auth, signed time, token) is invalid or expired
    └── ProofOfWorkError       proof of work does not meet the required difficulty

Decoders and verifiers never let IndexError/KeyError escape: every failure on outside input is one of
these types.
"""

from __future__ import annotations

from nabu_py.errors import DecodeError, HashMismatch


class PeergosError(Exception):
    """Base class of peergos_node's deliberate errors."""


class BadSignature(PeergosError, ValueError):
    """An Ed25519 signature failed to verify."""


class BadCiphertext(PeergosError, ValueError):
    """Authenticated decryption failed."""


class AuthError(PeergosError):
    """An authorisation (BAT auth, signed time, signup token, ...) is invalid."""


class ProofOfWorkError(PeergosError, ValueError):
    """Proof of work is malformed or too weak."""


__all__ = [
    "AuthError",
    "BadCiphertext",
    "BadSignature",
    "DecodeError",
    "HashMismatch",
    "PeergosError",
    "ProofOfWorkError",
]
