"""dag-cbor as Peergos writes it: canonical encoding, tag-42 links, strict decoding."""

from __future__ import annotations

import cbor2
import pytest

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid


def test_key_order_is_length_first() -> None:
    enc = dag_cbor.encode({"tree": 1, "controller": 2, "a": 3, "cn": 4, "b": 5, "th": 6})
    assert dag_cbor.decode(enc) == {"a": 3, "b": 5, "cn": 4, "th": 6, "tree": 1, "controller": 2}
    keys = list(dag_cbor.decode(enc))
    assert keys == ["a", "b", "cn", "th", "tree", "controller"]


def test_links_are_tag_42_with_zero_prefix() -> None:
    cid = Cid.for_block(CODEC_DAG_CBOR, b"x")
    enc = dag_cbor.encode(cid)
    assert enc[:2] == bytes.fromhex("d82a") and enc[4] == 0 and enc[5:] == bytes(cid)
    assert dag_cbor.decode(enc) == cid


def test_shortest_integers_and_definite_lengths() -> None:
    assert dag_cbor.encode(23) == b"\x17"
    assert dag_cbor.encode(24) == b"\x18\x18"
    assert dag_cbor.encode(-1) == b"\x20"
    assert dag_cbor.encode([1, [2]]) == bytes.fromhex("82018102")
    assert dag_cbor.encode(True) == b"\xf5" and dag_cbor.encode(None) == b"\xf6"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("a2616101616102", "duplicate key"),
        ("9fff", "indefinite array"),
        ("5f41004100ff", "indefinite bytes"),
        ("0102", "trailing bytes"),
        ("5bffffffffffffff00", "declared length beyond input"),
        ("9bffffffffffffff00", "declared array length beyond input"),
        ("c11a00000000", "tag other than 42"),
        ("f97c00", "float"),
        ("f7", "undefined"),
        ("a1010a", "integer map key"),
        ("a1410a0a", "byte map key"),
        ("d82a4100", "empty link"),
        ("d82a4101", "link without 0x00 prefix"),
        ("d82a6161", "link over text"),
        ("81" * 100 + "01", "nesting"),
        ("", "empty"),
        ("62ffff", "invalid utf-8"),
        ("1c", "reserved additional info"),
    ],
)
def test_decoder_rejects(bad: str, why: str) -> None:
    with pytest.raises(DecodeError):
        dag_cbor.decode(bytes.fromhex(bad))


def test_zero_padding_only_when_allowed() -> None:
    padded = dag_cbor.encode([1, 2]) + bytes(10)
    with pytest.raises(DecodeError):
        dag_cbor.decode(padded)
    assert dag_cbor.decode(padded, allow_zero_padding=True) == [1, 2]
    with pytest.raises(DecodeError):
        dag_cbor.decode(dag_cbor.encode(1) + b"\x00\x01", allow_zero_padding=True)


def test_size_limit() -> None:
    with pytest.raises(DecodeError):
        dag_cbor.decode(dag_cbor.encode(b"x" * 100), max_size=50)


def test_encode_rejects_unknown_types() -> None:
    with pytest.raises(TypeError):
        dag_cbor.encode(object())


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, {"b": [b"x", 1.5]}]},
        [[[{"k": cbor2.undefined}]]],
        {"a": {"b": {b"raw": 1}}},
        [1, "x", {"c": [None, True, cbor2.CBORSimpleValue(99)]}],
    ],
)
def test_decoder_rejects_bad_items_nested_anywhere(value: object) -> None:
    with pytest.raises(DecodeError):
        dag_cbor.decode(cbor2.dumps(value))


def test_decoder_keeps_the_full_integer_range() -> None:
    value = {"a": [0, -1, 2**64 - 1, -(2**64)], "b": {"c": [None, True, False, b"", ""]}}
    assert dag_cbor.decode(dag_cbor.encode(value)) == value
