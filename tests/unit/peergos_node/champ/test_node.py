"""CHAMP node format: BitSet bitmaps, LSB-first hash bits, bucket order, reversed links, strict decoding."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, CODEC_RAW, Cid
from peergos_node.champ.node import (
    EMPTY_NODE,
    EMPTY_NODE_BYTES,
    MAX_NODE_BYTES,
    ChampNode,
    decode_node,
    encode_node,
    hash_int,
    key_order,
    mask,
    node_to_cbor,
)

C1 = Cid.for_block(CODEC_DAG_CBOR, b"one")
C2 = Cid.for_block(CODEC_DAG_CBOR, b"two")
C3 = Cid.for_block(CODEC_DAG_CBOR, b"three")
BAT = Cid(1, CODEC_RAW, b"\x12\x20" + bytes(range(32)))


def _readme_mask(h: bytes, depth: int) -> int:
    """The bit-position rule exactly as vectors/README.md words it (idx, shift, low bits, high bits)."""
    idx, shift = 3 * depth // 8, 3 * depth % 8
    low = min(3, 8 - shift)
    first = (h[idx] >> shift) & ((1 << low) - 1) if idx < len(h) else 0
    high = 3 - low
    second = (h[idx + 1] & ((1 << high) - 1)) if idx + 1 < len(h) else 0
    return first | (second << low)


def test_empty_node_bytes() -> None:
    assert encode_node(EMPTY_NODE) == EMPTY_NODE_BYTES == bytes.fromhex("83404080")
    assert decode_node(EMPTY_NODE_BYTES) == EMPTY_NODE


@pytest.mark.parametrize("depth", range(32))
def test_mask_is_lsb_first_and_matches_the_readme_rule(depth: int) -> None:
    for h in (bytes(range(1, 33)), bytes([0xA5, 0x3C] * 16), bytes([0xFF] * 32), bytes.fromhex("07b1")):
        assert mask(hash_int(h), depth) == _readme_mask(h, depth)


def test_mask_examples() -> None:
    h = hash_int(bytes([0b11000110, 0b00000001]))
    assert mask(h, 0) == 0b110  # bits 0..2 of byte 0
    assert mask(h, 1) == 0b000  # bits 3..5 of byte 0
    assert mask(h, 2) == 0b111  # bits 6, 7 of byte 0 and bit 0 of byte 1 above them
    assert mask(h, 3) == 0  # beyond the hash: zero, as Java's mask
    assert mask(hash_int(b""), 0) == 0


def test_bucket_order_is_length_then_unsigned_bytes() -> None:
    keys = [b"\x00\x00", b"\xff", b"\x80", b"", b"\x01\xff", b"\x01\x00"]
    assert sorted(keys, key=key_order) == [b"", b"\x80", b"\xff", b"\x00\x00", b"\x01\x00", b"\x01\xff"]


def test_layout_buckets_then_links_in_decreasing_bit_order() -> None:
    node = ChampNode(
        data_map=0b0000_0101,
        node_map=0b1010_0000,
        buckets=(((b"a", C1),), ((b"b", None), (b"cc", 7))),
        children=(C2, C3),  # bit 5, bit 7 (increasing)
    )
    enc = encode_node(node)
    value = dag_cbor.decode(enc)
    assert value[0] == b"\x05" and value[1] == b"\xa0"
    assert value[2] == [[b"a", C1], [b"b", None, b"cc", 7], C3, C2]
    assert enc == dag_cbor.encode(node_to_cbor(node))
    assert decode_node(enc) == node
    assert node.bucket_at(2) == ((b"b", None), (b"cc", 7)) and node.bucket_at(1) is None
    assert node.child_at(5) == C2 and node.child_at(7) == C3 and node.child_at(0) is None
    assert node.key_count() == 3


def test_mirror_bat_root_form() -> None:
    node = ChampNode(0b10, 0, (((b"k", C1),),), (), mirror_bat=BAT)
    enc = encode_node(node)
    assert enc == dag_cbor.encode({"d": [b"\x02", b"", [[b"k", C1]]], "bats": [BAT.to_bytes()]})
    assert decode_node(enc) == node
    empty_with_bat = ChampNode(0, 0, (), (), BAT)
    assert encode_node(empty_with_bat).startswith(b"\xa2\x61d\x83\x40\x40\x80\x64bats\x81")


def test_large_keys_and_values_use_long_headers() -> None:
    key = bytes(300)
    node = ChampNode(1, 0, (((key, b"v" * 70000),),), ())
    assert encode_node(node) == dag_cbor.encode(node_to_cbor(node))
    assert decode_node(encode_node(node)) == node


def _enc(value: object) -> bytes:
    return dag_cbor.encode(value)


GOOD_BUCKET = [b"a", C1]

BAD_NODES = {
    "not an array": _enc({"x": 1}),
    "two items": _enc([b"", b""]),
    "four items": _enc([b"", b"", [], []]),
    "dataMap not bytes": _enc([0, b"", []]),
    "nodeMap text": _enc([b"", "", []]),
    "two-byte bitmap": _enc([b"\x01\x00", b"", [GOOD_BUCKET]]),
    "untrimmed zero bitmap": _enc([b"\x00", b"", []]),
    "overlapping bitmaps": _enc([b"\x01", b"\x01", [GOOD_BUCKET, C1]]),
    "contents not a list": _enc([b"", b"", {}]),
    "too few contents": _enc([b"\x03", b"", [GOOD_BUCKET]]),
    "too many contents": _enc([b"\x01", b"", [GOOD_BUCKET, GOOD_BUCKET]]),
    "link count": _enc([b"", b"\x03", [C1]]),
    "empty bucket": _enc([b"\x01", b"", [[]]]),
    "odd bucket": _enc([b"\x01", b"", [[b"a"]]]),
    "five pairs": _enc([b"\x01", b"", [[x for i in range(5) for x in (bytes([i]), C1)]]]),
    "unsorted bucket": _enc([b"\x01", b"", [[b"b", C1, b"a", C1]]]),
    "length before bytes": _enc([b"\x01", b"", [[b"aa", C1, b"b", C1]]]),
    "duplicate key": _enc([b"\x01", b"", [[b"a", C1, b"a", C2]]]),
    "text key": _enc([b"\x01", b"", [["a", C1]]]),
    "link where bucket": _enc([b"\x01", b"", [C1]]),
    "bucket where link": _enc([b"", b"\x01", [GOOD_BUCKET]]),
    "bytes where link": _enc([b"", b"\x01", [b"x"]]),
    "raw child link": _enc([b"", b"\x01", [Cid.for_block(CODEC_RAW, b"x")]]),
    "map with extra field": _enc({"d": [b"", b"", []], "bats": [BAT.to_bytes()], "x": 1}),
    "map without bats": _enc({"d": [b"", b"", []]}),
    "empty bats": _enc({"d": [b"", b"", []], "bats": []}),
    "two bats": _enc({"d": [b"", b"", []], "bats": [BAT.to_bytes(), BAT.to_bytes()]}),
    "bat not bytes": _enc({"d": [b"", b"", []], "bats": [BAT]}),
    "bat not a cid": _enc({"d": [b"", b"", []], "bats": [b"\x05"]}),
    "nested map form": _enc({"d": {"d": [b"", b"", []], "bats": [BAT.to_bytes()]}, "bats": [BAT.to_bytes()]}),
    "non-shortest integer value": bytes.fromhex("8341014081824161" + "1807"),
    "unsorted map value": bytes.fromhex("834101408182416a" + "a2626262016161" + "02"),
    "trailing bytes": EMPTY_NODE_BYTES + b"\x00",
    "truncated": EMPTY_NODE_BYTES[:-1],
    "empty input": b"",
}


@pytest.mark.parametrize("name", sorted(BAD_NODES))
def test_malformed_nodes_are_decode_errors(name: str) -> None:
    with pytest.raises(DecodeError):
        decode_node(BAD_NODES[name])


def test_the_bad_value_encodings_are_otherwise_valid_cbor() -> None:
    # The two non-canonical cases above must fail for canonicality, not for shape.
    assert dag_cbor.decode(BAD_NODES["non-shortest integer value"]) == [b"\x01", b"", [[b"a", 7]]]
    assert dag_cbor.decode(BAD_NODES["unsorted map value"]) == [b"\x01", b"", [[b"j", {"bb": 1, "a": 2}]]]


def test_oversized_node_is_refused() -> None:
    with pytest.raises(DecodeError):
        decode_node(b"\x83" + bytes(MAX_NODE_BYTES))
