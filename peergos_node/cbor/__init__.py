"""Peergos CBOR objects on top of nabu_py's dag-cbor codec (spec/peergos.md §1.5).

Peergos structures implement `to_cbor()` (returning a dag-cbor value tree) and a classmethod
`from_cbor(value)`; `serialize()` / `deserialize(bytes)` wrap those with the strict codec. The typed
accessors below turn a wrong shape into a `DecodeError` that names the structure and field, so parsers
never leak KeyError/IndexError/TypeError on hostile input.
"""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import Cid

CborValue = Any
T = TypeVar("T")


class Cborable(Protocol):
    """A Peergos object with a CBOR form."""

    def to_cbor(self) -> CborValue: ...


def serialize(obj: Cborable) -> bytes:
    """Canonical dag-cbor bytes of a Cborable."""
    return dag_cbor.encode(obj.to_cbor())


def decode(
    data: bytes, *, allow_zero_padding: bool = False, max_size: int = dag_cbor.DEFAULT_MAX_SIZE
) -> Any:
    """Strictly decode one CBOR item."""
    return dag_cbor.decode(data, allow_zero_padding=allow_zero_padding, max_size=max_size)


class CborMixin:
    """Adds serialize()/deserialize() to classes with to_cbor()/from_cbor()."""

    def to_cbor(self) -> CborValue:
        raise TypeError(f"{type(self).__name__} does not define to_cbor")

    @classmethod
    def from_cbor(cls, value: CborValue) -> Self:
        raise TypeError(f"{cls.__name__} does not define from_cbor")

    def serialize(self) -> bytes:
        """Canonical dag-cbor bytes."""
        return dag_cbor.encode(self.to_cbor())

    @classmethod
    def deserialize(cls, data: bytes, *, allow_zero_padding: bool = False) -> Self:
        """Strictly parse canonical CBOR bytes."""
        return cls.from_cbor(dag_cbor.decode(data, allow_zero_padding=allow_zero_padding))


def _where(ctx: str, key: str | int | None) -> str:
    return ctx if key is None else f"{ctx}.{key}"


def expect_map(value: CborValue, ctx: str) -> dict[str, CborValue]:
    """The value as a CBOR map, else DecodeError."""
    if type(value) is not dict:
        raise DecodeError(f"{ctx}: expected a CBOR map, got {type(value).__name__}")
    return value


def expect_list(
    value: CborValue, ctx: str, length: int | None = None, max_len: int | None = None
) -> list[Any]:
    """The value as a CBOR array (optionally of an exact or maximum length)."""
    if type(value) is not list:
        raise DecodeError(f"{ctx}: expected a CBOR array, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise DecodeError(f"{ctx}: expected {length} items, got {len(value)}")
    if max_len is not None and len(value) > max_len:
        raise DecodeError(f"{ctx}: more than {max_len} items")
    return value


def as_bytes(value: CborValue, ctx: str, length: int | None = None, max_len: int | None = None) -> bytes:
    """The value as a byte string (optionally of an exact or maximum length)."""
    if type(value) is not bytes:
        raise DecodeError(f"{ctx}: expected a byte string, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise DecodeError(f"{ctx}: expected {length} bytes, got {len(value)}")
    if max_len is not None and len(value) > max_len:
        raise DecodeError(f"{ctx}: longer than {max_len} bytes")
    return value


def as_int(value: CborValue, ctx: str, lo: int = -(1 << 63), hi: int = (1 << 63) - 1) -> int:
    """The value as an integer within [lo, hi] (Java long by default)."""
    if type(value) is not int:
        raise DecodeError(f"{ctx}: expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise DecodeError(f"{ctx}: integer {value} out of range [{lo}, {hi}]")
    return value


def as_str(value: CborValue, ctx: str, max_len: int | None = None) -> str:
    """The value as a text string."""
    if type(value) is not str:
        raise DecodeError(f"{ctx}: expected a text string, got {type(value).__name__}")
    if max_len is not None and len(value) > max_len:
        raise DecodeError(f"{ctx}: longer than {max_len} characters")
    return value


def as_bool(value: CborValue, ctx: str) -> bool:
    """The value as a boolean."""
    if type(value) is not bool:
        raise DecodeError(f"{ctx}: expected a boolean, got {type(value).__name__}")
    return value


def as_link(value: CborValue, ctx: str) -> Cid:
    """The value as a merkle link (tag 42)."""
    if type(value) is not Cid:
        raise DecodeError(f"{ctx}: expected a merkle link, got {type(value).__name__}")
    return value


def as_cid_bytes(value: CborValue, ctx: str) -> Cid:
    """A byte string holding CID bytes (Peergos `MaybeMultihash`, BatId, PointerUpdate hashes)."""
    return Cid.decode(as_bytes(value, ctx, max_len=256))


def field(m: dict[str, CborValue], key: str, ctx: str) -> CborValue:
    """A required map field."""
    try:
        return m[key]
    except KeyError:
        raise DecodeError(f"{ctx}: missing field {key!r}") from None


def only_keys(m: dict[str, CborValue], allowed: frozenset[str] | set[str], ctx: str) -> None:
    """Reject unknown keys (used where Peergos' own parser is strict)."""
    if not allowed.issuperset(m):  # no set built on the (usual) success path
        raise DecodeError(f"{ctx}: unexpected fields {sorted(set(m).difference(allowed))}")


__all__ = [
    "CborMixin",
    "CborValue",
    "Cborable",
    "as_bool",
    "as_bytes",
    "as_cid_bytes",
    "as_int",
    "as_link",
    "as_str",
    "decode",
    "expect_list",
    "expect_map",
    "field",
    "only_keys",
    "serialize",
]
