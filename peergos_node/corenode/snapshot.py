"""`UserSnapshot`: one user's server-side state for migration and whole-server mirroring (spec/peergos.md
§12.2 `getUserSnapshots` and `migrateUser`, §14; Java `UserSnapshot`, `LinkCounts`, `BlindFollowRequest`).

Theory of operation
-------------------
When a user moves to another server (or a server mirrors another), the old server hands over what is not
in content-addressed blocks. CBOR map:

    {n: username, o: link(identity), p: [link(writer), h'signed pointer', ...],
     f: [BlindFollowRequest...], b: [BatWithId...], l?: LoginData, lc: LinkCounts}

- `p` is Java's map-as-list: keys and values alternate, keys in `Multihash.compareTo` order (digest
  length, then digest bytes compared as *signed* Java bytes, then hash type);
- `BlindFollowRequest` `{k: PublicBoxingKey (ephemeral), f: h'padded box cipher text'}` — a pending follow
  request, still sealed (§9.1). It is defined here because the snapshot is its only user so far;
- `LinkCounts` `{d: [label, count, modified epoch seconds, ...]}` — secret-link use counts (§10).

Decoding rejects odd-length pointer lists, duplicate writers and duplicate link labels (Java would let the
last one win). LinkCounts are written in label order (Java's is HashMap order; readers do not care).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Self

from peergos_node.accounts.login_data import LoginData
from peergos_node.cbor import (
    CborMixin,
    CborValue,
    as_bytes,
    as_int,
    as_str,
    expect_list,
    expect_map,
    only_keys,
)
from peergos_node.cbor import field as cbor_field
from peergos_node.corenode.usernames import MAX_USERNAME_SIZE
from peergos_node.crypto.bat import BatWithId
from peergos_node.crypto.boxing import PublicBoxingKey, public_boxing_key_from_cbor
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.errors import DecodeError
from peergos_node.mutable.pointer_update import MAX_SIGNED_POINTER_SIZE

MAX_WRITERS = 1 << 16
MAX_FOLLOW_REQUESTS = 1 << 14
MAX_MIRROR_BATS = 1024
MAX_LINK_COUNTS = 1 << 16
MAX_FOLLOW_REQUEST_BYTES = 16 * 1024


@dataclass(frozen=True)
class BlindFollowRequest(CborMixin):
    """A sealed follow request: an ephemeral public boxing key and the padded cipher text."""

    dummy_source: PublicBoxingKey
    cipher_text: bytes = field(repr=False)

    def to_cbor(self) -> CborValue:
        return {"k": self.dummy_source.to_cbor(), "f": self.cipher_text}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "BlindFollowRequest"
        m = expect_map(value, ctx)
        only_keys(m, {"k", "f"}, ctx)
        return cls(
            public_boxing_key_from_cbor(cbor_field(m, "k", ctx)),
            as_bytes(cbor_field(m, "f", ctx), f"{ctx}.f", max_len=MAX_FOLLOW_REQUEST_BYTES),
        )


@dataclass(frozen=True)
class LinkCounts(CborMixin):
    """Secret-link use counts: label -> (count, last modified UTC epoch seconds)."""

    counts: Mapping[int, tuple[int, int]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))

    def to_cbor(self) -> CborValue:
        data: list[int] = []
        for label in sorted(self.counts):
            count, seconds = self.counts[label]
            data += [label, count, seconds]
        return {"d": data}

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "LinkCounts"
        m = expect_map(value, ctx)
        only_keys(m, {"d"}, ctx)
        d = expect_list(cbor_field(m, "d", ctx), f"{ctx}.d", max_len=3 * MAX_LINK_COUNTS)
        if len(d) % 3:
            raise DecodeError(f"Invalid cbor for LinkCounts: list size {len(d)} is not a multiple of 3")
        counts: dict[int, tuple[int, int]] = {}
        for i in range(0, len(d), 3):
            label = as_int(d[i], f"{ctx}.label")
            if label in counts:
                raise DecodeError(f"{ctx}: duplicate label {label}")
            counts[label] = (as_int(d[i + 1], f"{ctx}.count"), as_int(d[i + 2], f"{ctx}.modified"))
        return cls(counts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinkCounts) and dict(self.counts) == dict(other.counts)

    def __hash__(self) -> int:
        return hash(frozenset(self.counts.items()))


def _java_multihash_order(h: PublicKeyHash) -> tuple[int, tuple[int, ...], int]:
    digest = h.cid.digest
    return (len(digest), tuple(b - 256 if b > 127 else b for b in digest), h.cid.hash_code)


@dataclass(frozen=True)
class UserSnapshot(CborMixin):
    """What a server hands over about a user besides blocks."""

    username: str
    owner: PublicKeyHash
    pointers: Mapping[PublicKeyHash, bytes]
    pending_follow_requests: tuple[BlindFollowRequest, ...] = ()
    mirror_bats: tuple[BatWithId, ...] = ()
    login: LoginData | None = None
    link_counts: LinkCounts = field(default_factory=lambda: LinkCounts({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "pointers", MappingProxyType(dict(self.pointers)))

    def to_cbor(self) -> CborValue:
        flat: list[CborValue] = []
        for writer in sorted(self.pointers, key=_java_multihash_order):
            flat += [writer.to_cbor(), self.pointers[writer]]
        m: dict[str, CborValue] = {
            "n": self.username,
            "o": self.owner.to_cbor(),
            "f": [r.to_cbor() for r in self.pending_follow_requests],
            "p": flat,
            "b": [b.to_cbor() for b in self.mirror_bats],
            "lc": self.link_counts.to_cbor(),
        }
        if self.login is not None:
            m["l"] = self.login.to_cbor()
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "UserSnapshot"
        m = expect_map(value, ctx)
        only_keys(m, {"n", "o", "f", "p", "b", "l", "lc"}, ctx)
        flat = expect_list(cbor_field(m, "p", ctx), f"{ctx}.p", max_len=2 * MAX_WRITERS)
        if len(flat) % 2:
            raise DecodeError(f"{ctx}.p: a map as a list needs an even number of items")
        pointers: dict[PublicKeyHash, bytes] = {}
        for i in range(0, len(flat), 2):
            writer = PublicKeyHash.from_cbor(flat[i])
            if writer in pointers:
                raise DecodeError(f"{ctx}.p: duplicate writer {writer}")
            pointers[writer] = as_bytes(flat[i + 1], f"{ctx}.p", max_len=MAX_SIGNED_POINTER_SIZE)
        follow = expect_list(cbor_field(m, "f", ctx), f"{ctx}.f", max_len=MAX_FOLLOW_REQUESTS)
        bats = expect_list(cbor_field(m, "b", ctx), f"{ctx}.b", max_len=MAX_MIRROR_BATS)
        return cls(
            as_str(cbor_field(m, "n", ctx), f"{ctx}.n", max_len=MAX_USERNAME_SIZE),
            PublicKeyHash.from_cbor(cbor_field(m, "o", ctx)),
            pointers,
            tuple(BlindFollowRequest.from_cbor(r) for r in follow),
            tuple(BatWithId.from_cbor(b) for b in bats),
            LoginData.from_cbor(m["l"]) if "l" in m else None,
            LinkCounts.from_cbor(cbor_field(m, "lc", ctx)),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UserSnapshot) and self.to_cbor() == other.to_cbor()

    def __hash__(self) -> int:
        return hash((self.username, self.owner))


__all__ = ["BlindFollowRequest", "LinkCounts", "UserSnapshot"]
