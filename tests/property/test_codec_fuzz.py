"""Hypothesis: codec round trips, and every decoder fed arbitrary bytes raises only DecodeError."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats import multibase, multihash, varint
from nabu_py.multiformats.cid import Cid
from tests.helpers.fuzz import fuzz_settings, round_trip_settings

cids = st.builds(
    lambda codec, data: Cid.for_block(codec, data),
    st.sampled_from([0x55, 0x70, 0x71, 0x72]),
    st.binary(max_size=64),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1),
    st.text(max_size=40),
    st.binary(max_size=64),
    cids,
)
values: Any = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)


@round_trip_settings
@given(values)
def test_dag_cbor_round_trip(value: Any) -> None:
    enc = dag_cbor.encode(value)
    assert dag_cbor.decode(enc) == value
    assert dag_cbor.encode(dag_cbor.decode(enc)) == enc


@fuzz_settings
@given(st.binary(max_size=300))
def test_dag_cbor_decode_arbitrary_bytes(data: bytes) -> None:
    try:
        value = dag_cbor.decode(data)
    except DecodeError:
        return
    dag_cbor.encode(value)


@round_trip_settings
@given(values, st.binary(min_size=1, max_size=8))
def test_dag_cbor_mutations(value: Any, junk: bytes) -> None:
    enc = bytearray(dag_cbor.encode(value))
    pos = junk[0] % len(enc)
    enc[pos : pos + 1] = junk[1:]
    try:
        dag_cbor.decode(bytes(enc))
    except DecodeError:
        pass


@fuzz_settings
@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_varint_round_trip(n: int) -> None:
    assert varint.decode(varint.encode(n)) == n


@fuzz_settings
@given(st.binary(max_size=12))
def test_varint_decode_arbitrary(data: bytes) -> None:
    try:
        varint.decode(data)
    except DecodeError:
        pass


@fuzz_settings
@given(st.binary(max_size=80))
def test_cid_decode_arbitrary(data: bytes) -> None:
    try:
        cid = Cid.decode(data)
    except DecodeError:
        return
    assert Cid.decode(bytes(cid)) == cid


@fuzz_settings
@given(
    st.sampled_from([1, 1, 1, 0, 2, 0x12]),
    st.integers(0, 255),
    st.sampled_from([0x12, 0x12, 0x13, 0x00, 0x20]),
    st.sampled_from([0x20, 0x20, 0x1F, 0x21, 0x80]),
    st.binary(min_size=32, max_size=32) | st.binary(min_size=30, max_size=34),
)
def test_cid_decode_fast_path_matches_the_general_parser(
    version: int, codec: int, code: int, length: int, rest: bytes
) -> None:
    data = bytes([version, codec, code, length]) + rest
    try:
        general, end = Cid.decode_from(data, 0)
        if end != len(data):
            raise DecodeError("trailing")
    except DecodeError:
        general = None
    try:
        cid: Cid | None = Cid.decode(data)
    except DecodeError:
        cid = None
    if general is None or cid is None:
        assert general is cid
        return
    assert (cid.version, cid.codec, cid.multihash, bytes(cid)) == (
        general.version,
        general.codec,
        general.multihash,
        bytes(general),
    )
    assert cid == general and hash(cid) == hash(general) and str(cid) == str(general)


@fuzz_settings
@given(st.text(max_size=80))
def test_cid_parse_arbitrary(text: str) -> None:
    try:
        Cid.parse(text)
    except DecodeError:
        pass


@fuzz_settings
@given(st.binary(max_size=80))
def test_multihash_decode_arbitrary(data: bytes) -> None:
    try:
        multihash.decode(data)
    except DecodeError:
        pass


@fuzz_settings
@given(st.binary(max_size=64), st.sampled_from(["base58btc", "base32", "base32upper", "base16"]))
def test_multibase_round_trip(data: bytes, base: str) -> None:
    assert multibase.decode(multibase.encode(data, base)) == data
