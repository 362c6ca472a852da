"""DAG-CBOR as Peergos writes it (spec/peergos.md §1.5, vectors/README.md "CBOR as Peergos writes it").

Encoding: definite lengths, shortest integers, map keys (text only) sorted length-first then bytewise
(cbor2's canonical mode gives exactly this order for text keys), merkle links as tag 42 over
`0x00 || CID bytes`. Python model: None, bool, int, str, bytes, list (tuples encode as lists), dict
with str keys, and `Cid` for a tag-42 link.

Decoding is strict and bounded, with cbor2's C decoder doing the parsing: duplicate keys, indefinite
lengths, nesting deeper than `max_depth`, declared lengths beyond the input, tags other than 42,
floats and other simple values, non-text map keys and trailing bytes are all `DecodeError`s. Peergos
reads exactly one item out of zero-padded plaintext (PaddedCipherText); `allow_zero_padding=True`
accepts trailing zero bytes for that case only.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

import cbor2

from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import Cid

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_SIZE = 16 * 1024 * 1024

CborValue = Any
"""A decoded dag-cbor value: None | bool | int | str | bytes | list | dict[str, ...] | Cid."""


def _encode_default(encoder: cbor2.CBOREncoder, value: object) -> None:
    if isinstance(value, Cid):
        encoder.encode(cbor2.CBORTag(42, b"\x00" + value.to_bytes()))
        return
    raise TypeError(f"cannot dag-cbor encode {type(value).__name__}")


def encode(value: CborValue) -> bytes:
    """Serialise a value in Peergos' canonical dag-cbor form."""
    try:
        return cbor2.dumps(value, canonical=True, default=_encode_default)
    except cbor2.CBOREncodeError as e:
        raise TypeError(f"cannot dag-cbor encode value: {e}") from None


def _decode_link(value: object, _immutable: bool) -> Cid:
    if not isinstance(value, bytes) or len(value) < 2 or value[0] != 0:
        raise DecodeError("tag 42 must wrap a byte string 0x00 || CID bytes")
    return Cid.decode(value[1:])


def _reject_tag(tag: int) -> Any:
    def reject(_value: object, _immutable: bool) -> NoReturn:
        raise DecodeError(f"CBOR tag {tag} is not allowed in dag-cbor")

    return reject


class _OnlyTag42(Mapping[int, Any]):
    """semantic_decoders for cbor2: tag 42 becomes a Cid, every other tag is refused."""

    def __getitem__(self, tag: int) -> Any:
        return _decode_link if tag == 42 else _reject_tag(tag)

    def __contains__(self, tag: object) -> bool:
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


_TAGS = _OnlyTag42()
_SCALARS = frozenset({int, str, bytes, bool, Cid, type(None)})
"""Leaf types of the Python model. Integers need no range check: without tags 2/3 (refused) cbor2 only
makes them from major types 0/1, whose 64-bit argument keeps them in [-2**64, 2**64 - 1]."""
_CONTAINERS = frozenset({list, dict})
_ALLOWED = _SCALARS | _CONTAINERS
_TEXT = frozenset({str})


def _check(value: object) -> None:
    """Refuse what cbor2 decodes but dag-cbor does not allow (floats, simple values, non-text keys).

    Iterative, and the leaves of a container are checked by one C-level pass over their types (the
    per-item work in Python is limited to nested containers): this runs on every decoded block."""
    t = type(value)
    if t not in _CONTAINERS:
        if t not in _SCALARS:
            raise DecodeError(f"unsupported CBOR item: {t.__name__}")
        return
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            if not _TEXT.issuperset(map(type, v)):
                raise DecodeError("dag-cbor map keys must be text strings")
            items = v.values()
        else:
            items = v
        kinds = set(map(type, items))
        if kinds <= _SCALARS:
            continue
        if not kinds <= _ALLOWED:
            bad = next(iter(kinds - _ALLOWED))
            raise DecodeError(f"unsupported CBOR item: {bad.__name__}")
        stack.extend(i for i in items if type(i) in _CONTAINERS)


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int = DEFAULT_MAX_SIZE,
    allow_zero_padding: bool = False,
) -> CborValue:
    """Decode exactly one dag-cbor item; DecodeError on anything malformed or out of bounds."""
    if len(data) > max_size:
        raise DecodeError(f"CBOR input of {len(data)} bytes exceeds the {max_size}-byte limit")
    if not data:
        raise DecodeError("empty CBOR input")
    buf = bytes(data)
    fp = io.BytesIO(buf)
    try:
        value = cbor2.CBORDecoder(
            fp,
            semantic_decoders=_TAGS,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
            max_depth=max_depth,
        ).decode()
    except DecodeError:
        raise
    except cbor2.CBORDecodeError as e:
        cause = e.__cause__
        if isinstance(cause, DecodeError):
            raise DecodeError(str(cause)) from None
        raise DecodeError(f"malformed CBOR: {e}") from None
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError, UnicodeError) as e:
        raise DecodeError(f"malformed CBOR: {e}") from None
    end = fp.tell()
    if end != len(buf):
        rest = buf[end:]
        if not allow_zero_padding or rest.count(0) != len(rest):
            raise DecodeError(f"{len(rest)} trailing bytes after the CBOR item")
    _check(value)
    return value
