"""Errors of the merkle-CHAMP (spec/peergos.md §5.2, §4.4).

    PeergosError
    └── ChampError                     a CHAMP operation cannot be done as asked
        ├── CasError                   compare-and-set failed: the key's current value is not the expected one
        │                              (Java `MutableTree.CasException`)
        ├── ConcurrentModification     a 3-way merge found keys changed on both sides (Java "Concurrent
        │                              modification of a file or directory!")
        ├── HashCollision              more than 4 keys share all 96 hash bits the tree can use (Java
        │                              "Hash collision!")
        └── MissingBlock (LookupError) a node the operation needs is not in the block store

Malformed nodes or trees (from a store or a remote server) raise `DecodeError`, as everywhere else.
"""

from __future__ import annotations

from typing import Any

from nabu_py.multiformats.cid import Cid
from peergos_node.errors import PeergosError


class ChampError(PeergosError):
    """Base class of CHAMP operation errors."""


class CasError(ChampError):
    """Compare-and-set failed: `key` maps to `actual` (None when absent), not to `expected`."""

    def __init__(self, key: bytes, actual: Any, expected: Any) -> None:
        super().__init__(f"CAS failed for key {key.hex()}: current value {actual!r}, expected {expected!r}")
        self.key = key
        self.actual = actual
        self.expected = expected


class ConcurrentModification(ChampError):
    """A 3-way merge found `keys` changed both locally and remotely."""

    def __init__(self, keys: frozenset[bytes]) -> None:
        shown = ", ".join(sorted(k.hex() for k in keys)[:4])
        more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
        super().__init__(f"Concurrent modification of a file or directory! keys {shown}{more}")
        self.keys = keys


class HashCollision(ChampError):
    """More than MAX_BUCKET keys have identical hash bits down to the deepest level."""

    def __init__(self) -> None:
        super().__init__("Hash collision!")


class MissingBlock(ChampError, LookupError):
    """A CHAMP node needed by an operation is absent from the block store."""

    def __init__(self, cid: Cid) -> None:
        super().__init__(f"CHAMP node {cid} is not in the block store")
        self.cid = cid


__all__ = ["CasError", "ChampError", "ConcurrentModification", "HashCollision", "MissingBlock"]
