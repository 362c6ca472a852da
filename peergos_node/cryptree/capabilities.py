"""Absolute capabilities: what it takes to find and read (or write) a node (spec/peergos.md §6.1).

Theory of operation
-------------------
An `AbsoluteCapability` names a cryptree node by its *location* — owner and writer public key hashes
plus a 32-byte map key in the writer's CHAMP — together with the BAT that authorises fetching its
blocks (absent on legacy nodes) and the read base key. A `WritableAbsoluteCapability` also carries the
write base key. Holding less means being able to do less: (owner, writer, map key, BAT) is a *mirror*
cap (fetch ciphertext), adding the read key gives a *read* cap, adding the write key a *write* cap.

CBOR (a map, canonical key order): `{o: link owner, w: link writer, m: h'mapKey', a?: Bat,
k: SymmetricKey, b?: SymmetricKey}` — a capability is writable iff `b` is present.

Link form (public-file redirects, legacy v1 secret links): `#` + `/`-joined plain base58 (no multibase
prefix) of: the owner hash's CBOR (including tag 42), the writer hash's CBOR, `mapKey || Bat CBOR`
(just the map key without a BAT), the read key's CBOR, and for writable caps the write key's CBOR.
Values are immutable; `readonly()` drops the write key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import Self

from nabu_py.codec import dag_cbor
from nabu_py.multiformats import multibase
from peergos_node.cbor import CborMixin, CborValue, as_bytes, expect_map, only_keys
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.bat import Bat
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.errors import DecodeError

MAP_KEY_BYTES = 32
MAX_LINK_TEXT = 1024
_KEYS = frozenset({"o", "w", "m", "a", "k", "b"})


@dataclass(frozen=True)
class AbsoluteCapability(CborMixin):
    """A read capability: location (owner, writer, map key), optional BAT and the read base key."""

    owner: PublicKeyHash
    writer: PublicKeyHash
    map_key: bytes
    bat: Bat | None
    rbase_key: SymmetricKey = dc_field(repr=False)

    def __post_init__(self) -> None:
        if type(self.map_key) is not bytes or len(self.map_key) != MAP_KEY_BYTES:
            raise ValueError("a map key is exactly 32 bytes")

    @property
    def is_writable(self) -> bool:
        """True for capabilities that carry a write base key."""
        return False

    def readonly(self) -> AbsoluteCapability:
        """The read-only capability for the same node."""
        return AbsoluteCapability(self.owner, self.writer, self.map_key, self.bat, self.rbase_key)

    def with_map_key(self, map_key: bytes, bat: Bat | None) -> Self:
        """The same keys at another location: the next chunk of a file or directory (Java `withMapKey`)."""
        return replace(self, map_key=map_key, bat=bat)

    def with_write_key(self, wbase_key: SymmetricKey) -> WritableAbsoluteCapability:
        """The writable capability for the same node."""
        return WritableAbsoluteCapability(
            self.owner, self.writer, self.map_key, self.bat, self.rbase_key, wbase_key
        )

    def _cbor_map(self) -> dict[str, CborValue]:
        m: dict[str, CborValue] = {
            "o": self.owner.to_cbor(),
            "w": self.writer.to_cbor(),
            "m": self.map_key,
            "k": self.rbase_key.to_cbor(),
        }
        if self.bat is not None:
            m["a"] = self.bat.to_cbor()
        return m

    def to_cbor(self) -> CborValue:
        return self._cbor_map()

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        cap = capability_from_cbor(value)
        if not isinstance(cap, cls):
            raise DecodeError(f"{cls.__name__}: the capability has no write key")
        return cap

    def _link_parts(self) -> list[bytes]:
        location = self.map_key + (self.bat.serialize() if self.bat is not None else b"")
        return [self.owner.serialize(), self.writer.serialize(), location, self.rbase_key.serialize()]

    def to_link(self) -> str:
        """`#owner/writer/mapKey+bat/readKey[/writeKey]` in plain base58 (Peergos `toLink`)."""
        return "#" + "/".join(multibase.b58encode(part) for part in self._link_parts())

    @staticmethod
    def from_link(text: str) -> AbsoluteCapability:
        """Parse `to_link` output (the leading `#` is optional); writable if it has 5 parts."""
        if type(text) is not str or len(text) > MAX_LINK_TEXT:
            raise DecodeError("capability link must be a string of bounded length")
        parts = (text[1:] if text.startswith("#") else text).split("/")
        if len(parts) not in (4, 5):
            raise DecodeError("a capability link has 4 or 5 parts")
        raw = [multibase.b58decode(p) for p in parts]
        owner = PublicKeyHash.from_cbor(dag_cbor.decode(raw[0]))
        writer = PublicKeyHash.from_cbor(dag_cbor.decode(raw[1]))
        if len(raw[2]) < MAP_KEY_BYTES:
            raise DecodeError("capability link: map key shorter than 32 bytes")
        map_key, bat_cbor = raw[2][:MAP_KEY_BYTES], raw[2][MAP_KEY_BYTES:]
        bat = Bat.deserialize(bat_cbor) if bat_cbor else None
        read_key = SymmetricKey.deserialize(raw[3])
        if len(raw) == 5:
            return WritableAbsoluteCapability(
                owner, writer, map_key, bat, read_key, SymmetricKey.deserialize(raw[4])
            )
        return AbsoluteCapability(owner, writer, map_key, bat, read_key)


@dataclass(frozen=True)
class WritableAbsoluteCapability(AbsoluteCapability):
    """A capability that also carries the node's write base key (CBOR field `b`)."""

    wbase_key: SymmetricKey = dc_field(repr=False)

    @property
    def is_writable(self) -> bool:
        return True

    def to_cbor(self) -> CborValue:
        m = self._cbor_map()
        m["b"] = self.wbase_key.to_cbor()
        return m

    def _link_parts(self) -> list[bytes]:
        return [*super()._link_parts(), self.wbase_key.serialize()]


def capability_from_cbor(value: CborValue) -> AbsoluteCapability:
    """Decode a capability map: a `WritableAbsoluteCapability` if it has `b`, else read-only."""
    ctx = "AbsoluteCapability"
    m = expect_map(value, ctx)
    only_keys(m, _KEYS, ctx)
    owner = PublicKeyHash.from_cbor(cbor_field(m, "o", ctx))
    writer = PublicKeyHash.from_cbor(cbor_field(m, "w", ctx))
    map_key = as_bytes(cbor_field(m, "m", ctx), f"{ctx}.m", length=MAP_KEY_BYTES)
    bat = Bat.from_cbor(m["a"]) if "a" in m else None
    read_key = SymmetricKey.from_cbor(cbor_field(m, "k", ctx))
    if "b" in m:
        write_key = SymmetricKey.from_cbor(m["b"])
        return WritableAbsoluteCapability(owner, writer, map_key, bat, read_key, write_key)
    return AbsoluteCapability(owner, writer, map_key, bat, read_key)


__all__ = ["MAP_KEY_BYTES", "AbsoluteCapability", "WritableAbsoluteCapability", "capability_from_cbor"]
