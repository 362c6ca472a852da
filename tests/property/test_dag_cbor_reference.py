"""Hypothesis: the fast `dag_cbor.decode` accepts and rejects exactly what a plain reference decoder does.

`reference_decode` below is the straightforward strict decoder (a fresh cbor2 decoder per call, then an
iterative walk over the decoded value) that `decode` replaced by pooled decoders and a recursive type
walk. Both are fed valid dag-cbor, CBOR that cbor2 writes but dag-cbor forbids (floats, simple values,
`undefined`, non-text keys, foreign tags, bignums, shared values, string references, indefinite
lengths), with trailing bytes, zero padding, truncations and byte edits, plus arbitrary bytes, at
several depth limits and as bytes, bytearray and memoryview; they must agree on accept/reject and,
when accepting, on the decoded value down to the Python types (so `True` never passes for `1`).
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import Any, NoReturn

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import Cid
from tests.helpers.fuzz import fuzz_settings, round_trip_settings

# ---- the reference: the strict decoder as first written -------------------------------------------


def _ref_link(value: object, _immutable: bool) -> Cid:
    if not isinstance(value, bytes) or len(value) < 2 or value[0] != 0:
        raise DecodeError("tag 42 must wrap a byte string 0x00 || CID bytes")
    return Cid.decode(value[1:])


def _ref_reject(tag: int) -> Any:
    def reject(_value: object, _immutable: bool) -> NoReturn:
        raise DecodeError(f"CBOR tag {tag} is not allowed in dag-cbor")

    return reject


class _RefTags(Mapping[int, Any]):
    def __getitem__(self, tag: int) -> Any:
        return _ref_link if tag == 42 else _ref_reject(tag)

    def __contains__(self, tag: object) -> bool:
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


_LEAVES = (type(None), bool, int, str, bytes, Cid)


def _ref_check(value: object) -> None:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict) and type(v) is dict:
            for k, x in v.items():
                if type(k) is not str:
                    raise DecodeError("dag-cbor map keys must be text strings")
                stack.append(x)
        elif type(v) is list:
            stack.extend(v)
        elif type(v) not in _LEAVES:
            raise DecodeError(f"unsupported CBOR item: {type(v).__name__}")


def reference_decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = dag_cbor.DEFAULT_MAX_DEPTH,
    max_size: int = dag_cbor.DEFAULT_MAX_SIZE,
    allow_zero_padding: bool = False,
) -> Any:
    buf = bytes(data)
    if len(buf) > max_size:
        raise DecodeError("too big")
    if not buf:
        raise DecodeError("empty")
    fp = io.BytesIO(buf)
    try:
        value = cbor2.CBORDecoder(
            fp,
            semantic_decoders=_RefTags(),
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
            max_depth=max_depth,
        ).decode()
    except DecodeError:
        raise
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, UnicodeError):
        raise DecodeError("malformed") from None
    rest = buf[fp.tell() :]
    if rest and (not allow_zero_padding or rest.count(0) != len(rest)):
        raise DecodeError("trailing bytes")
    _ref_check(value)
    return value


# ---- comparison -----------------------------------------------------------------------------------


def same(a: Any, b: Any, *, ordered: bool = True) -> bool:
    """Equal values of the same types all the way down (`==` alone has True == 1 and 1 == 1.0), with
    map keys in the same order unless `ordered` is false."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y, ordered=ordered) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        keys_match = list(a) == list(b) if ordered else a.keys() == b.keys()
        return keys_match and all(same(a[k], b[k], ordered=ordered) for k in a)
    return bool(a == b)


def outcome(decoder: Any, data: bytes | bytearray | memoryview, **kw: Any) -> tuple[bool, Any]:
    try:
        return True, decoder(data, **kw)
    except DecodeError:
        return False, None


def assert_agree(data: bytes, *, as_type: type = bytes, **kw: Any) -> bool:
    view: bytes | bytearray | memoryview = as_type(data)
    ok_ref, v_ref = outcome(reference_decode, data, **kw)
    ok_new, v_new = outcome(dag_cbor.decode, view, **kw)
    assert ok_new == ok_ref, (data.hex(), kw, v_ref)
    if ok_ref:
        assert same(v_new, v_ref), (data.hex(), kw)
    return ok_ref


# ---- generators -----------------------------------------------------------------------------------

cids = st.builds(
    lambda codec, data: Cid.for_block(codec, data),
    st.sampled_from([0x55, 0x70, 0x71]),
    st.binary(max_size=16),
)
dag_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1),
    st.text(max_size=12),
    st.binary(max_size=40),
    cids,
)
dag_values: Any = st.recursive(
    dag_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)

tag_numbers = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 5, 24, 25, 28, 29, 30, 37, 42, 256, 258, 55799]),
    st.integers(min_value=0, max_value=(1 << 64) - 1),
)
wild_scalars = st.one_of(
    dag_scalars,
    st.integers(),  # beyond 64 bits cbor2 writes bignums (tags 2/3)
    st.floats(),
    st.just(cbor2.undefined),
    st.builds(cbor2.CBORSimpleValue, st.integers(0, 19) | st.integers(32, 255)),
    st.builds(lambda b: cbor2.CBORTag(42, b), st.binary(max_size=40)),
    st.builds(lambda cid: cbor2.CBORTag(42, b"\x00" + bytes(cid)), cids),
    st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\x00", b"\xf9")),
)
wild_keys = st.one_of(
    st.text(max_size=6), st.binary(max_size=6), st.integers(-3, 30), st.booleans(), st.none()
)
wild_values: Any = st.recursive(
    wild_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=6), children, max_size=5),
        st.dictionaries(wild_keys, children, max_size=4),
        st.builds(cbor2.CBORTag, tag_numbers, children),
    ),
    max_leaves=25,
)
encode_options = st.fixed_dictionaries(
    {
        "canonical": st.booleans(),
        "indefinite_containers": st.booleans(),
        "string_referencing": st.booleans(),
        "value_sharing": st.booleans(),
    }
)
suffixes = st.one_of(
    st.just(b""),
    st.integers(1, 40).map(bytes),
    st.binary(min_size=1, max_size=8),
    st.builds(lambda n, b: bytes(n) + b, st.integers(0, 8), st.binary(min_size=1, max_size=3)),
)
depths = st.sampled_from([1, 2, 3, 16, dag_cbor.DEFAULT_MAX_DEPTH, 200])
input_types = st.sampled_from([bytes, bytearray, memoryview])


def _wild_encode(value: Any, options: dict[str, Any]) -> bytes | None:
    try:
        return cbor2.dumps(value, default=dag_cbor._encode_default, **options)
    except (cbor2.CBOREncodeError, TypeError, ValueError, OverflowError):
        return None


# ---- properties -----------------------------------------------------------------------------------


@round_trip_settings
@given(dag_values, suffixes, st.booleans(), depths, input_types)
def test_valid_dag_cbor_agrees(value: Any, suffix: bytes, padding: bool, depth: int, as_type: type) -> None:
    enc = dag_cbor.encode(value)
    accepted = assert_agree(enc + suffix, allow_zero_padding=padding, max_depth=depth, as_type=as_type)
    if not suffix and depth == dag_cbor.DEFAULT_MAX_DEPTH:
        assert accepted and same(dag_cbor.decode(enc), value, ordered=False)


@fuzz_settings
@given(wild_values, encode_options, suffixes, st.booleans(), depths, input_types)
def test_wild_cbor_agrees(
    value: Any, options: dict[str, Any], suffix: bytes, padding: bool, depth: int, as_type: type
) -> None:
    enc = _wild_encode(value, options)
    if enc is None:
        return
    assert_agree(enc + suffix, allow_zero_padding=padding, max_depth=depth, as_type=as_type)


@round_trip_settings
@given(wild_values, st.binary(min_size=1, max_size=6), st.integers(0, 1 << 16), st.booleans())
def test_edited_cbor_agrees(value: Any, junk: bytes, where: int, padding: bool) -> None:
    enc = _wild_encode(value, {})
    if enc is None:
        return
    data = bytearray(enc)
    pos = where % len(data)
    data[pos : pos + junk[0] % 3] = junk[1:]
    assert_agree(bytes(data), allow_zero_padding=padding)
    assert_agree(enc[: where % len(enc)], allow_zero_padding=padding)


@fuzz_settings
@given(st.binary(max_size=200), st.booleans(), depths)
def test_arbitrary_bytes_agree(data: bytes, padding: bool, depth: int) -> None:
    assert_agree(data, allow_zero_padding=padding, max_depth=depth)


header_soup = st.lists(
    st.one_of(
        st.sampled_from([0x80, 0x81, 0x82, 0x9F, 0xA0, 0xA1, 0xA2, 0xBF, 0xFF, 0xD8, 0x2A, 0xC2]).map(
            lambda b: bytes([b])
        ),
        st.integers(0xE0, 0xFF).map(lambda b: bytes([b])),
        st.integers(0x40, 0x7B).map(lambda b: bytes([b])),
        st.binary(max_size=4),
    ),
    max_size=30,
).map(b"".join)


@round_trip_settings
@given(header_soup, st.booleans())
def test_header_soup_agrees(data: bytes, padding: bool) -> None:
    assert_agree(data, allow_zero_padding=padding)


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    return bytes([major << 5 | 24, n]) if n < 256 else bytes([major << 5 | 25]) + n.to_bytes(2, "big")


raw_map_keys = st.one_of(st.sampled_from(["a", "b", "", "cc"]), wild_keys)


@round_trip_settings
@given(
    st.lists(st.tuples(raw_map_keys, wild_scalars | st.lists(wild_scalars, max_size=3)), max_size=6),
    st.integers(0, 3),
    st.sampled_from([0x80, 0xA0]),
    st.booleans(),
)
def test_raw_maps_agree(items: list[tuple[Any, Any]], wrap: int, wrapper: int, padding: bool) -> None:
    """Maps written item by item, so keys repeat (cbor2's encoder never writes a duplicate key)."""
    body = b"".join((_wild_encode(k, {}) or b"\xf6") + (_wild_encode(v, {}) or b"\xf6") for k, v in items)
    data = _head(5, len(items)) + body
    for _ in range(wrap):  # nested as the only element of an array, or under the map key "w"
        data = (b"\x81" if wrapper == 0x80 else b"\xa1\x61w") + data
    assert_agree(data, allow_zero_padding=padding)


# ---- examples -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hexdata",
    [
        "f97c00",  # half float
        "fa3f800000",  # single float
        "fb3ff0000000000000",  # double float
        "f0",  # simple value 16
        "f820",  # simple value 32
        "f7",  # undefined
        "ff",  # a lone break
        "81ff",  # break inside a definite array
        "a1ff01",  # break as a map key
        "a2616101616202",  # fine
        "a14101f6",  # byte-string key
        "a1f6f6",  # null key
        "a1f4f6",  # false key
        "a10101",  # integer key
        "8343f9fafb01f5",  # byte string holding float heads, fine
        "c249010000000000000000",  # bignum
        "d9010078",  # string namespace tag
        "d81c80",  # shareable
        "d8f6",  # 1-byte tag
        "c1f6",  # epoch datetime over null
    ],
)
def test_examples_agree(hexdata: str) -> None:
    data = bytes.fromhex(hexdata)
    for padding in (False, True):
        assert_agree(data, allow_zero_padding=padding)
        assert_agree(data + bytes(3), allow_zero_padding=padding)


def test_pooled_decoders_survive_errors_and_big_inputs() -> None:
    good = dag_cbor.encode({"a": [b"x" * 70_000, 1], "b": {"c": None}})
    assert same(dag_cbor.decode(good), {"a": [b"x" * 70_000, 1], "b": {"c": None}})
    for bad in ("5bffffffffffffff00", "a2616101616102", "9f01ff", "81f97c00", "d82a4101"):
        with pytest.raises(DecodeError):
            dag_cbor.decode(bytes.fromhex(bad))
        assert dag_cbor.decode(dag_cbor.encode([1, {"k": b"v"}])) == [1, {"k": b"v"}]
    # a truncated item is an error, never a read past the input left over from an earlier parse
    item = dag_cbor.encode({"k": b"\x01" * 40})
    dag_cbor.decode(item + bytes(100), allow_zero_padding=True)
    with pytest.raises(DecodeError):
        dag_cbor.decode(item[:-1])


def test_deep_values_with_a_large_depth_limit() -> None:
    deep = b"\x81" * 500 + b"\x01"
    value = dag_cbor.decode(deep, max_depth=600)
    for _ in range(500):
        value = value[0]
    assert value == 1
    with pytest.raises(DecodeError):
        dag_cbor.decode(b"\x81" * 500 + b"\xf7", max_depth=600)


def test_walk_falls_back_when_the_stack_is_already_deep() -> None:
    value = dag_cbor.encode([[[[{"a": [b"x"]}]]]] * 3)
    bad = b"\x81" * 60 + b"\xf9\x00\x00"

    def at_depth(n: int) -> tuple[Any, bool]:
        if n:
            return at_depth(n - 1)
        rejected = False
        try:
            dag_cbor.decode(bad)
        except DecodeError:
            rejected = True
        return dag_cbor.decode(value), rejected

    depth = 0
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 60)  # leaves ~30 frames: enough for `value`, not for `bad`'s 60 levels
    try:
        decoded, rejected = at_depth(30)
    finally:
        sys.setrecursionlimit(limit)
    assert decoded == [[[[{"a": [b"x"]}]]]] * 3 and rejected


def test_concurrent_decodes_from_threads() -> None:
    values = [{"i": i, "b": bytes([i]) * (i % 50), "l": [i, {"x": str(i)}]} for i in range(64)]
    blobs = [dag_cbor.encode(v) for v in values]
    failures: list[str] = []

    def work() -> None:
        for _ in range(200):
            for v, b in zip(values, blobs, strict=True):
                if not same(dag_cbor.decode(b), v, ordered=False):
                    failures.append(b.hex())
            try:
                dag_cbor.decode(b"\x82\x01\xf9\x00\x00")
                failures.append("float accepted")
            except DecodeError:
                pass

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
