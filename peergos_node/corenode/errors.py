"""Error tree of peergos_node.corenode (the PKI: spec/peergos.md §3).

    PeergosError                      (peergos_node.errors)
    └── PkiError                      a PKI rule was broken
        ├── InvalidUsername (ValueError)   the name breaks UsernameValidator's rules (§3.2)
        └── InvalidChain                   a claim or chain breaks the rules of §3.2 (bad signature,
            │                              payload that does not match the claim, wrong providers, missing
            │                              key-change proof, ...) or an update does not legally extend the
            │                              current chain
            ├── UserAlreadyExists          the update's tail does not start with the current owner
            ├── ExpiryMovedBack            the update would move the claim's expiry backwards
            └── KeyReuse                   the update would make a previous identity key current again

Malformed bytes are `DecodeError` (re-exported from peergos_node.errors); a broken signature inside a
chain is reported as `InvalidChain` (with the reason), because for the PKI the chain as a whole is what is
accepted or refused. Messages follow Java's where Java has one, since clients show them to users.
"""

from __future__ import annotations

from peergos_node.errors import DecodeError, PeergosError


class PkiError(PeergosError):
    """Base class of PKI rule violations."""


class InvalidUsername(PkiError, ValueError):
    """A username that may not be claimed."""


class InvalidChain(PkiError):
    """A claim chain (or an update of one) that breaks the PKI rules."""


class UserAlreadyExists(InvalidChain):
    """The name is held by another key: the update does not start with the current owner."""


class ExpiryMovedBack(InvalidChain):
    """The update's expiry is before the current one (this is how replayed old chains are refused)."""


class KeyReuse(InvalidChain):
    """The update makes an identity key that was used before current again."""


__all__ = [
    "DecodeError",
    "ExpiryMovedBack",
    "InvalidChain",
    "InvalidUsername",
    "KeyReuse",
    "PkiError",
    "UserAlreadyExists",
]
