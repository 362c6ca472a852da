"""DAG-CBOR as Peergos writes it (spec/peergos.md §1.5, vectors/README.md "CBOR as Peergos writes it").

Encoding: definite lengths, shortest integers, map keys (text only) sorted length-first then bytewise
(cbor2's canonical mode gives exactly this order for text keys), merkle links as tag 42 over
`0x00 || CID bytes`. Python model: None, bool, int, str, bytes, list (tuples encode as lists), dict
with str keys, and `Cid` for a tag-42 link.

Decoding is strict and bounded, with cbor2's native (Rust) decoder doing the parsing: duplicate keys,
indefinite lengths, nesting deeper than `max_depth`, declared lengths beyond the input, tags other than
42, floats and other simple values, non-text map keys and trailing bytes are all `DecodeError`s.
Peergos reads exactly one item out of zero-padded plaintext (PaddedCipherText); `allow_zero_padding=True`
accepts trailing zero bytes for that case only.

Theory of operation (decoding)
------------------------------
`decode` runs on every block the filesystem client reads (a folder listing decodes three items per
entry), mostly small ones, so the Python work around cbor2's parse is kept to a minimum:

- cbor2 enforces what it can itself: definite lengths only (`allow_indefinite=False`), no duplicate
  keys, text or byte-string keys only (`strict_hashable_types`), `max_depth`, lengths against the
  input (it reads from a `BytesIO` of exactly the input, so a declared length past its end is an EOF),
  and tags through `semantic_decoders`: a dict that maps 42 to the link decoder (in cbor2's two-stage
  `shareable_decoder` form, which it calls more cheaply than a plain callback) and, through
  `__missing__`, every other tag to one that refuses it (so none of cbor2's built-in tags — bignums,
  string references, shared values, ... — can run). `Cid.decode` has a fast path for the usual
  36-byte CIDv1 over sha2-256.
- The decoder objects are reused: building a `CBORDecoder` costs about as much as parsing a small
  item, so inputs up to `_POOLED_INPUT_MAX` bytes at the default depth take one from `_POOL` (a plain
  list: `pop`/`append` are atomic, so threads and re-entrant calls each get their own decoder, and a
  decoder is never shared by two parses at once), point it at a fresh `BytesIO` and put it back
  afterwards, even after a failed parse: the `fp` setter resets all of its read state. Its `read_size`
  covers the whole input, so it reads once and seeks back to the item's end; `fp.tell()` then finds
  trailing bytes. A pooled decoder keeps a reference to its last input until the next parse; the size
  cap and `_POOL_MAX` bound that memory.
- What cbor2 accepts but dag-cbor does not (floats, simple values other than false/true/null — they
  decode to `float`, `CBORSimpleValue`, `undefined` —, byte-string map keys) is found by one walk over
  the decoded value (`_walk`), checking each element's type against the model's leaf types and
  recursing into lists and dicts. The walk is recursive (cheaper than an explicit stack for the small,
  shallow values that dominate) when `max_depth` keeps it well inside Python's recursion limit, and an
  explicit stack (`_check_deep`) otherwise or if the caller's stack is already too deep for it. A
  byte-level pre-scan cannot replace it: a float's or simple value's initial byte (0xe0-0xfb) turns up
  just as often inside the encrypted byte strings that make up most of every block.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
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


def _link(value: object) -> Cid:
    if type(value) is not bytes or len(value) < 2 or value[0] != 0:
        raise DecodeError("tag 42 must wrap a byte string 0x00 || CID bytes")
    return Cid.decode(value[1:])


_LINK_STAGES = (None, _link)


@cbor2.shareable_decoder(name="merkle link")
def _decode_link(_immutable: bool) -> tuple[None, Callable[[object], Cid]]:
    """cbor2's two-stage form of the tag-42 decoder: no container to share, then `_link` on the value.

    cbor2 calls a plain semantic decoder only after probing it for this form's attributes, which
    costs more than the extra call (measured: 0.8 vs 0.2 us per link)."""
    return _LINK_STAGES


def _reject_tag(tag: int) -> Any:
    def reject(_value: object, _immutable: bool) -> NoReturn:
        raise DecodeError(f"CBOR tag {tag} is not allowed in dag-cbor")

    return reject


class _OnlyTag42(dict[int, Any]):
    """semantic_decoders for cbor2: tag 42 becomes a Cid, every other tag is refused.

    A dict subclass so that the lookup of tag 42 (every link) is a plain dict lookup; any other tag
    misses and `__missing__` hands cbor2 a decoder that raises. Nothing is ever added to it."""

    def __missing__(self, tag: int) -> Any:
        return _reject_tag(tag)


_TAGS = _OnlyTag42({42: _decode_link})
_SCALARS = frozenset({int, str, bytes, bool, Cid, type(None)})
"""Leaf types of the Python model. Integers need no range check: without tags 2/3 (refused) cbor2 only
makes them from major types 0/1, whose 64-bit argument keeps them in [-2**64, 2**64 - 1]."""
_TEXT = frozenset({str})

_RECURSIVE_WALK_MAX_DEPTH = 128
"""Up to this `max_depth` the type walk recurses (depth <= max_depth frames on top of the caller's)."""
_POOLED_INPUT_MAX = 64 * 1024
"""Inputs up to this size are parsed by a pooled decoder (which keeps its last input until reused)."""
_POOL_MAX = 16
"""At most this many idle decoders are kept (one per thread decoding at the same time is enough)."""
_POOL: list[cbor2.CBORDecoder] = []


def _new_decoder(max_depth: int, fp: io.BytesIO, read_size: int) -> cbor2.CBORDecoder:
    return cbor2.CBORDecoder(
        fp,
        semantic_decoders=_TAGS,
        allow_indefinite=False,
        allow_duplicate_keys=False,
        strict_hashable_types=True,
        max_depth=max_depth,
        read_size=read_size,
    )


def _bad_item(t: type) -> NoReturn:
    raise DecodeError(f"unsupported CBOR item: {t.__name__}")


def _bad_key() -> NoReturn:
    raise DecodeError("dag-cbor map keys must be text strings")


def _walk(items: Iterable[Any]) -> None:
    """Check the elements of a list (or a dict's values) and, recursively, nested containers."""
    for x in items:
        t = type(x)
        if t in _SCALARS:
            continue
        if t is dict:
            for k in x:
                if type(k) is not str:
                    _bad_key()
            _walk(x.values())
        elif t is list:
            _walk(x)
        else:
            _bad_item(t)


def _check_deep(value: object) -> None:
    """The same checks as `_walk` over `[value]`, with an explicit stack (for any nesting depth)."""
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is dict:
            if not _TEXT.issuperset(map(type, v)):
                _bad_key()
            stack.extend(v.values())
        elif t is list:
            stack.extend(v)
        elif t not in _SCALARS:
            _bad_item(t)


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int = DEFAULT_MAX_SIZE,
    allow_zero_padding: bool = False,
) -> CborValue:
    """Decode exactly one dag-cbor item; DecodeError on anything malformed or out of bounds."""
    if type(data) is not bytes:
        data = bytes(data)
    n = len(data)
    if n > max_size:
        raise DecodeError(f"CBOR input of {n} bytes exceeds the {max_size}-byte limit")
    if not n:
        raise DecodeError("empty CBOR input")
    fp = io.BytesIO(data)
    dec: cbor2.CBORDecoder | None = None
    if n <= _POOLED_INPUT_MAX and max_depth == DEFAULT_MAX_DEPTH:
        try:
            dec = _POOL.pop()
        except IndexError:
            dec = _new_decoder(DEFAULT_MAX_DEPTH, fp, _POOLED_INPUT_MAX)
        else:
            dec.fp = fp
    try:
        value = (_new_decoder(max_depth, fp, n) if dec is None else dec).decode()
    except DecodeError:
        raise
    except cbor2.CBORDecodeError as e:
        cause = e.__cause__
        if isinstance(cause, DecodeError):
            raise DecodeError(str(cause)) from None
        raise DecodeError(f"malformed CBOR: {e}") from None
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError, UnicodeError) as e:
        raise DecodeError(f"malformed CBOR: {e}") from None
    finally:
        if dec is not None and len(_POOL) < _POOL_MAX:
            _POOL.append(dec)
    end = fp.tell()
    if end != n:
        rest = data[end:]
        if not allow_zero_padding or rest.count(0) != len(rest):
            raise DecodeError(f"{n - end} trailing bytes after the CBOR item")
    # refuse what cbor2 decodes but dag-cbor does not allow (floats, simple values, non-text keys)
    if max_depth <= _RECURSIVE_WALK_MAX_DEPTH:
        try:
            _walk((value,))
            return value
        except RecursionError:  # only if the caller's own stack is already deep
            pass
    _check_deep(value)
    return value
