"""Relative capabilities: links between cryptree nodes (spec/peergos.md §6.1, §6.2, §6.6; vectors README
"cbor.json" RelativeCapability / NamedRelativeCapability rows).

Theory of operation
-------------------
A `RelativeCapability` is a capability with the owner left implicit and the writer implicit unless it
differs from the context's: `{w?: link writer, m: h'mapKey', a?: Bat, k: read key, l?: SymmetricLink}`.
The context is whatever holds the link — a directory's child list, a node's next-chunk pointer, a
FromParent parent link — and the absolute capability it was reached through supplies owner and writer.
`l` is the child's write base key encrypted under the holder's write base key, so write access flows
down a tree only to those who can already write its root.

A `NamedRelativeCapability` is what a directory lists per child: the same map with `n` (name) and
optionally `d` (is a directory), `t` (MIME type) and `c` (creation time, UTC epoch seconds) added to it
(Peergos appends these keys for backwards compatibility, so old readers still see a RelativeCapability).

A directory chunk's plaintext is the CBOR list of its children (`ChildrenLinks`); directories written
before names moved into the parent hold bare RelativeCapabilities (their names live in each child's
properties), which `ChildrenLinks.legacy` keeps.

Decoding is strict: map keys are checked, map keys are 32 bytes, names follow `PathElement`'s rules,
creation times are within Java's range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import Self

from peergos_node.cbor import (
    CborMixin,
    CborValue,
    as_bool,
    as_bytes,
    as_int,
    as_str,
    expect_list,
    expect_map,
    only_keys,
)
from peergos_node.cbor import field as cbor_field
from peergos_node.crypto.bat import Bat
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import SYSTEM_RNG, Rng
from peergos_node.crypto.symmetric import SymmetricKey, SymmetricLink
from peergos_node.cryptree.capabilities import (
    MAP_KEY_BYTES,
    AbsoluteCapability,
    WritableAbsoluteCapability,
)
from peergos_node.cryptree.properties import (
    MAX_EPOCH_SECOND,
    MAX_FILE_NAME_SIZE,
    MAX_MIME_TYPE_LENGTH,
    MIN_EPOCH_SECOND,
    FileProperties,
    check_path_element,
)
from peergos_node.errors import DecodeError

MAX_CHILDREN_DECODED = 4096
"""Most child links one directory chunk may list when decoding (Peergos writes at most 500)."""

_RELATIVE_KEYS = frozenset({"w", "m", "a", "k", "l"})
_NAMED_KEYS = _RELATIVE_KEYS | {"n", "d", "t", "c"}


@dataclass(frozen=True)
class RelativeCapability(CborMixin):
    """A link to a node whose owner (and usually writer) come from the context it is found in."""

    map_key: bytes
    rbase_key: SymmetricKey = dc_field(repr=False)
    bat: Bat | None = None
    writer: PublicKeyHash | None = None
    wbase_key_link: SymmetricLink | None = dc_field(default=None, repr=False)

    def __post_init__(self) -> None:
        if type(self.map_key) is not bytes or len(self.map_key) != MAP_KEY_BYTES:
            raise ValueError("a map key is exactly 32 bytes")
        if not isinstance(self.rbase_key, SymmetricKey):
            raise ValueError("rbase_key must be a SymmetricKey")

    @classmethod
    def subsequent_chunk(cls, map_key: bytes, bat: Bat | None, base_key: SymmetricKey) -> RelativeCapability:
        """The next-chunk pointer of a node (Java `buildSubsequentChunk`): same writer, no write link."""
        return cls(map_key, base_key, bat)

    @classmethod
    def relativise(
        cls, holder: WritableAbsoluteCapability, target: AbsoluteCapability, rng: Rng = SYSTEM_RNG
    ) -> RelativeCapability:
        """The link `holder` stores to reach `target` (Java `WritableAbsoluteCapability.relativise`):
        the writer only if it differs, and a write-key link if the target is writable with another key."""
        if holder.owner != target.owner:
            raise ValueError("a capability can only link to one with the same owner")
        link = None
        if isinstance(target, WritableAbsoluteCapability) and target.wbase_key != holder.wbase_key:
            link = SymmetricLink.from_pair(holder.wbase_key, target.wbase_key, rng)
        writer = None if target.writer == holder.writer else target.writer
        return cls(target.map_key, target.rbase_key, target.bat, writer, link)

    @classmethod
    def to_parent(
        cls, parent: AbsoluteCapability, parent_parent_key: SymmetricKey, child_writer: PublicKeyHash
    ) -> RelativeCapability:
        """The FromParent link of a first chunk: the parent's location and BAT with the parent's own parent
        key, naming the parent's writer only if it differs from the child's."""
        writer = None if parent.writer == child_writer else parent.writer
        return cls(parent.map_key, parent_parent_key, parent.bat, writer)

    def with_writer(self, writer: PublicKeyHash | None) -> RelativeCapability:
        """The same link with another explicit writer (None: the context's writer)."""
        return replace(self, writer=writer)

    def with_location(self, map_key: bytes, bat: Bat | None) -> RelativeCapability:
        """The same keys at another map key and BAT."""
        return replace(self, map_key=map_key, bat=bat)

    def write_base_key(self, holder_wbase_key: SymmetricKey) -> SymmetricKey | None:
        """The target's write base key, unlocked with the holder's; None if this link carries none."""
        return None if self.wbase_key_link is None else self.wbase_key_link.target(holder_wbase_key)

    def to_absolute(self, source: AbsoluteCapability) -> AbsoluteCapability:
        """The absolute capability this link names, in the context of `source` (Java `toAbsolute`):
        writable when `source` is writable and the link carries a write key."""
        writer = self.writer or source.writer
        cap = AbsoluteCapability(source.owner, writer, self.map_key, self.bat, self.rbase_key)
        if isinstance(source, WritableAbsoluteCapability) and self.wbase_key_link is not None:
            return cap.with_write_key(self.wbase_key_link.target(source.wbase_key))
        return cap

    def _cbor_map(self) -> dict[str, CborValue]:
        m: dict[str, CborValue] = {"m": self.map_key, "k": self.rbase_key.to_cbor()}
        if self.writer is not None:
            m["w"] = self.writer.to_cbor()
        if self.bat is not None:
            m["a"] = self.bat.to_cbor()
        if self.wbase_key_link is not None:
            m["l"] = self.wbase_key_link.to_cbor()
        return m

    def to_cbor(self) -> CborValue:
        return self._cbor_map()

    @classmethod
    def _from_map(cls, m: dict[str, CborValue], ctx: str) -> Self:
        writer = PublicKeyHash.from_cbor(m["w"]) if "w" in m else None
        map_key = as_bytes(cbor_field(m, "m", ctx), f"{ctx}.m", length=MAP_KEY_BYTES)
        bat = Bat.from_cbor(m["a"]) if "a" in m else None
        key = SymmetricKey.from_cbor(cbor_field(m, "k", ctx))
        link = SymmetricLink.from_cbor(m["l"]) if "l" in m else None
        return cls(map_key, key, bat, writer, link)

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "RelativeCapability"
        m = expect_map(value, ctx)
        only_keys(m, _RELATIVE_KEYS, ctx)
        return cls._from_map(m, ctx)


@dataclass(frozen=True)
class NamedRelativeCapability(CborMixin):
    """A directory's link to one child: name, link, and optionally is-directory, MIME type and creation
    time (UTC epoch seconds; Peergos keeps only whole seconds here)."""

    name: str
    cap: RelativeCapability
    is_dir: bool | None = None
    mime_type: str | None = None
    created: int | None = None

    def __post_init__(self) -> None:
        check_path_element(self.name)
        if not isinstance(self.cap, RelativeCapability):
            raise ValueError("cap must be a RelativeCapability")
        if self.is_dir is not None and type(self.is_dir) is not bool:
            raise ValueError("is_dir is a bool or None")
        if self.mime_type is not None and (
            type(self.mime_type) is not str or len(self.mime_type) > MAX_MIME_TYPE_LENGTH
        ):
            raise ValueError("a MIME type is a short string")
        if self.created is not None and (
            type(self.created) is not int or not MIN_EPOCH_SECOND <= self.created <= MAX_EPOCH_SECOND
        ):
            raise ValueError("created is UTC epoch seconds within Java's range")

    @classmethod
    def for_child(cls, cap: RelativeCapability, props: FileProperties) -> NamedRelativeCapability:
        """The entry Peergos writes for a child with these properties (name, kind, MIME, created second)."""
        return cls(props.name, cap, props.is_directory, props.mime_type, props.created.seconds)

    @property
    def is_directory(self) -> bool:
        """Java `isDir()`: false when unknown."""
        return bool(self.is_dir)

    def renamed(self, name: str) -> NamedRelativeCapability:
        """The same entry under another name."""
        return replace(self, name=name)

    def with_cap(self, cap: RelativeCapability) -> NamedRelativeCapability:
        """The same entry pointing elsewhere."""
        return replace(self, cap=cap)

    def to_absolute(self, source: AbsoluteCapability) -> AbsoluteCapability:
        """The child's absolute capability, seen from the directory capability `source`."""
        return self.cap.to_absolute(source)

    def to_cbor(self) -> CborValue:
        m = self.cap._cbor_map()
        m["n"] = self.name
        if self.is_dir is not None:
            m["d"] = self.is_dir
        if self.mime_type is not None:
            m["t"] = self.mime_type
        if self.created is not None:
            m["c"] = self.created
        return m

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        ctx = "NamedRelativeCapability"
        m = expect_map(value, ctx)
        only_keys(m, _NAMED_KEYS, ctx)
        name = as_str(cbor_field(m, "n", ctx), f"{ctx}.n", max_len=2 * MAX_FILE_NAME_SIZE)
        cap = RelativeCapability._from_map(m, ctx)
        is_dir = as_bool(m["d"], f"{ctx}.d") if "d" in m else None
        mime = as_str(m["t"], f"{ctx}.t", max_len=MAX_MIME_TYPE_LENGTH) if "t" in m else None
        created = as_int(m["c"], f"{ctx}.c", MIN_EPOCH_SECOND, MAX_EPOCH_SECOND) if "c" in m else None
        try:
            return cls(name, cap, is_dir, mime, created)
        except ValueError as e:
            raise DecodeError(f"{ctx}: {e}") from None


@dataclass(frozen=True)
class ChildrenLinks(CborMixin):
    """The plaintext of a directory chunk: a CBOR list of child links.

    Current directories list `NamedRelativeCapability`s (`named`); legacy ones list bare
    `RelativeCapability`s (`legacy`) whose names must be read from each child. At most one is non-empty.
    """

    named: tuple[NamedRelativeCapability, ...] = ()
    legacy: tuple[RelativeCapability, ...] = ()

    def __post_init__(self) -> None:
        if self.named and self.legacy:
            raise ValueError("a child list is either named or legacy")

    @classmethod
    def of(cls, children: Sequence[NamedRelativeCapability]) -> ChildrenLinks:
        """A (current format) child list."""
        return cls(tuple(children))

    def __len__(self) -> int:
        return len(self.named) + len(self.legacy)

    def to_cbor(self) -> CborValue:
        items = self.named if self.named else self.legacy
        return [c.to_cbor() for c in items]

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        items = expect_list(value, "ChildrenLinks", max_len=MAX_CHILDREN_DECODED)
        if not items:
            return cls()
        first = expect_map(items[0], "ChildrenLinks[0]")
        if "n" in first:
            return cls(named=tuple(NamedRelativeCapability.from_cbor(c) for c in items))
        return cls(legacy=tuple(RelativeCapability.from_cbor(c) for c in items))


__all__ = ["MAX_CHILDREN_DECODED", "ChildrenLinks", "NamedRelativeCapability", "RelativeCapability"]
