"""Protobuf wire-format helper: varints, writer, field iteration and its failure modes."""

from __future__ import annotations

import pytest

from nabu_py.codec import protobuf as pb
from nabu_py.errors import DecodeError


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        ((1 << 64) - 1, b"\xff" * 9 + b"\x01"),
    ],
)
def test_varint_known_encodings(value: int, encoded: bytes) -> None:
    assert pb.encode_varint(value) == encoded
    assert pb.decode_varint(encoded) == (value, len(encoded))


@pytest.mark.parametrize("value", [-1, 1 << 64])
def test_varint_out_of_range_is_local_misuse(value: int) -> None:
    with pytest.raises(ValueError):
        pb.encode_varint(value)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\xff\xff", b"\xff" * 10 + b"\x01", b"\xff" * 9 + b"\x02"],
)
def test_varint_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        pb.decode_varint(data)


def test_non_minimal_varint_is_accepted_like_reference_parsers() -> None:
    assert pb.decode_varint(b"\x81\x00") == (1, 2)


def test_signed_helpers() -> None:
    assert pb.to_int32(pb.decode_varint(b"\xff" * 9 + b"\x01")[0]) == -1
    assert pb.to_int32(5) == 5
    assert pb.to_int64((1 << 64) - 2) == -2
    for v in (0, 1, -1, 2, -2, 1 << 40, -(1 << 40)):
        assert pb.zigzag_decode(pb.zigzag_encode(v)) == v
    assert [pb.zigzag_encode(v) for v in (0, -1, 1, -2)] == [0, 1, 2, 3]


def test_writer_and_iter_fields_round_trip() -> None:
    w = pb.Writer()
    w.write_uint(1, 150).write_bytes(2, b"testing").write_string(3, "hé").write_int(4, -1)
    w.write_fixed64(5, 7).write_fixed32(6, 9).write_sint(7, -3)
    data = w.finish()
    assert data.startswith(b"\x08\x96\x01\x12\x07testing")  # the protobuf guide's examples
    fields = list(pb.iter_fields(data))
    assert fields == [
        (1, pb.VARINT, 150),
        (2, pb.LEN, b"testing"),
        (3, pb.LEN, "hé".encode()),
        (4, pb.VARINT, (1 << 64) - 1),
        (5, pb.I64, 7),
        (6, pb.I32, 9),
        (7, pb.VARINT, 5),
    ]
    assert len(w) == len(data)


def test_unknown_fields_are_returned_for_the_caller_to_skip() -> None:
    data = pb.Writer().write_uint(99, 1).write_bytes(1000, b"x").write_uint(1, 2).finish()
    assert [f for f, _, _ in pb.iter_fields(data)] == [99, 1000, 1]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x0a\x05abc", "length past end"),
        (b"\x00\x01", "field number 0"),
        (b"\x0b", "start group"),
        (b"\x0c", "end group"),
        (b"\x0e\x00", "wire type 6"),
        (b"\x09\x01\x02", "truncated fixed64"),
        (b"\x0d\x01", "truncated fixed32"),
        (b"\x08", "missing varint"),
        (b"\x08\x80", "truncated varint"),
        (b"\x0a", "missing length"),
        (b"\xf8\xff\xff\xff\x7f\x00", "field number above 2**29-1"),
    ],
)
def test_malformed_messages(data: bytes, why: str) -> None:
    with pytest.raises(DecodeError):
        list(pb.iter_fields(data))


def test_expect_helpers_check_wire_types_and_bounds() -> None:
    assert pb.expect_int(1, pb.VARINT, 5) == 5
    assert pb.expect_bytes(1, pb.LEN, b"ab", max_len=2) == b"ab"
    assert pb.expect_string(1, pb.LEN, b"ok") == "ok"
    with pytest.raises(DecodeError):
        pb.expect_int(1, pb.LEN, b"x")
    with pytest.raises(DecodeError):
        pb.expect_bytes(1, pb.VARINT, 3)
    with pytest.raises(DecodeError):
        pb.expect_bytes(1, pb.LEN, b"abc", max_len=2)
    with pytest.raises(DecodeError):
        pb.expect_string(1, pb.LEN, b"\xff")


def test_tag_rejects_bad_field_numbers() -> None:
    with pytest.raises(ValueError):
        pb.tag(0, pb.VARINT)
    with pytest.raises(ValueError):
        pb.tag(1 << 29, pb.VARINT)


def test_memoryview_input_is_accepted() -> None:
    data = pb.Writer().write_bytes(1, b"abc").finish()
    assert list(pb.iter_fields(memoryview(data))) == [(1, pb.LEN, b"abc")]
