"""FileProperties, Java times and the file hash tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nabu_py.codec import dag_cbor
from peergos_node.cryptree.properties import (
    CHUNK_SIZE,
    EMPTY,
    MAX_EPOCH_SECOND,
    MIN_EPOCH_SECOND,
    ChunkHashList,
    FileProperties,
    HashBranch,
    HashTree,
    RootHash,
    Thumbnail,
    Timestamp,
    chunk_count,
    chunk_hashes,
    hash_tree_root,
    java_length,
)
from peergos_node.errors import DecodeError
from tests.helpers.cryptree import CREATED, MODIFIED


def test_java_time_range_constants() -> None:
    # Java: LocalDateTime.MIN/MAX.toEpochSecond(ZoneOffset.UTC)
    assert MIN_EPOCH_SECOND == -31557014135596800
    assert MAX_EPOCH_SECOND == 31556889832780799
    assert str(Timestamp.MIN) == "-999999999-01-01T00:00"
    assert str(Timestamp(MAX_EPOCH_SECOND, 999_999_999)) == "+999999999-12-31T23:59:59.999999999"


@pytest.mark.parametrize(
    ("text", "seconds", "nanos"),
    [
        ("1970-01-01T00:00", 0, 0),
        ("2023-01-02T03:04:05", 1672628645, 0),
        ("2024-03-04T05:06:07.123456789", 1709528767, 123456789),
        ("2024-03-04T05:06:07.120", 1709528767, 120_000_000),
        ("2024-03-04T05:06:07.000120", 1709528767, 120_000),
        ("1969-12-31T23:59:59", -1, 0),
        ("0000-01-01T00:00", -62167219200, 0),
        ("-0001-12-31T23:59:59", -62167219201, 0),
        ("+10000-01-01T00:00", 253402300800, 0),
    ],
)
def test_timestamp_parse_and_java_to_string(text: str, seconds: int, nanos: int) -> None:
    t = Timestamp.parse(text)
    assert (t.seconds, t.nanos) == (seconds, nanos)
    assert str(t) == text
    assert Timestamp.parse(str(t)) == t


def test_timestamp_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        Timestamp(MIN_EPOCH_SECOND - 1)
    with pytest.raises(ValueError):
        Timestamp(0, 1_000_000_000)
    for bad in ("2023-02-29T00:00", "2023-13-01T00:00", "2023-01-01", "2023-01-01T24:00", "x"):
        with pytest.raises(ValueError):
            Timestamp.parse(bad)
    assert Timestamp.parse("2024-02-29T00:00").seconds == 1709164800
    assert Timestamp.from_epoch_millis(1500) == Timestamp(1, 500_000_000)
    assert Timestamp.from_epoch_nanos(-1) == Timestamp(-1, 999_999_999)


def test_file_properties_cbor_key_order_and_round_trip() -> None:
    props = FileProperties.file(
        "a.txt", 5, MODIFIED, "text/plain", bytes(range(32)), thumbnail=Thumbnail("image/webp", b"\x01\x02")
    )
    raw = props.serialize()
    keys = list(dag_cbor.decode(raw))
    assert keys == ["c", "d", "h", "i", "l", "m", "n", "p", "s", "t", "cn", "im", "tn"]
    assert FileProperties.deserialize(raw) == props
    assert props.created == MODIFIED  # an upload's created time defaults to its modified time


def test_file_properties_legacy_defaults() -> None:
    # Peergos reads maps without l, tn, c, cn, im: false, 0, the modified second, 0, image/png
    raw = {"d": False, "n": "old.jpg", "m": "image/jpeg", "s": 3, "t": 1000, "h": False, "i": b"\x89PNG"}
    props = FileProperties.from_cbor(raw)
    assert not props.is_link
    assert props.modified == Timestamp(1000) and props.created == Timestamp(1000)
    assert props.thumbnail == Thumbnail("image/png", b"\x89PNG")


@pytest.mark.parametrize(
    "change",
    [
        {"n": ""},
        {"n": "."},
        {"n": ".."},
        {"n": "a/b"},
        {"n": "x" * 256},
        {"n": "\U0001f600" * 128},  # 256 UTF-16 code units
        {"d": True, "p": bytes(32)},  # a directory with a stream secret
        {"p": bytes(31)},
        {"s": -1},
        {"t": MAX_EPOCH_SECOND + 1},
        {"tn": 1_000_000_000},
        {"i": bytes(100 * 1024 + 1)},
        {"im": "image/png"},  # a thumbnail MIME type without a thumbnail
        {"zz": 1},
        {"h": 0},
    ],
)
def test_file_properties_decoding_is_strict(change: dict[str, object]) -> None:
    raw = dag_cbor.decode(FileProperties.file("a.txt", 5, MODIFIED, "text/plain", None).serialize())
    raw.update(change)
    with pytest.raises(DecodeError):
        FileProperties.deserialize(dag_cbor.encode(raw))


def test_names_count_utf16_code_units_like_java() -> None:
    assert java_length("\U0001f600") == 2
    FileProperties.file("\U0001f600" * 127 + "a", 0, MODIFIED, "", None)  # 255 code units
    with pytest.raises(ValueError):
        FileProperties.file("\U0001f600" * 128, 0, MODIFIED, "", None)


@given(st.text(alphabet=st.characters(), max_size=40))
def test_java_length_counts_astral_characters_twice(text: str) -> None:
    assert java_length(text) == len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def test_empty_properties_of_overflow_chunks() -> None:
    m = dag_cbor.decode(EMPTY.serialize())
    assert m["n"] == ".subsequent-dir-chunk" and m["d"] is True
    assert m["t"] == m["c"] == MIN_EPOCH_SECOND and m["tn"] == m["cn"] == 0
    assert FileProperties.deserialize(EMPTY.serialize()) == EMPTY


def test_directory_props() -> None:
    props = FileProperties.directory("Documents", CREATED, is_hidden=True)
    assert props.is_directory and props.size == 0 and props.mime_type == "" and props.is_hidden
    with pytest.raises(ValueError):
        FileProperties(props.name, True, 0, CREATED, CREATED, stream_secret=bytes(32))


def test_chunk_count() -> None:
    assert [chunk_count(n) for n in (0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE)] == [1, 1, 1, 2, 3]


def test_hash_tree_of_one_chunk() -> None:
    data = b"hello"
    tree = HashTree.of_data(data)
    leaf = hashlib.sha256(data).digest()
    want_root = hashlib.sha256(dag_cbor.encode([{"h": leaf}])).digest()
    assert tree.root.hash == want_root == hash_tree_root([leaf])
    assert tree.level1 == (ChunkHashList(leaf),) and tree.level2 == tree.level3 == ()
    assert tree.branch(0) == HashBranch(RootHash(want_root), ChunkHashList(leaf))
    assert HashTree.deserialize(tree.serialize()) == tree
    assert chunk_hashes(b"") == [hashlib.sha256(b"").digest()]


def test_hash_tree_levels() -> None:
    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1025)]
    tree = HashTree.build(hashes)
    assert [x.count for x in tree.level1] == [1024, 1]
    level2 = [hashlib.sha256(x.serialize()).digest() for x in tree.level1]
    assert tree.level2 == (ChunkHashList(b"".join(level2)),)
    assert tree.root.hash == hashlib.sha256(dag_cbor.encode([tree.level2[0].to_cbor()])).digest()
    assert tree.branch(1024).level1 == tree.level1[1]
    assert tree.branch(1024).level2 == tree.level2[0]
    assert tree.branch(0).level1 == tree.level1[0]
    assert tree.branch(2048).level1 is None
    assert HashTree.deserialize(tree.serialize()) == tree


def test_hash_branch_strictness() -> None:
    root = RootHash(bytes(32))
    with pytest.raises(ValueError):
        HashBranch(root, None, ChunkHashList(bytes(32)))
    for bad in (
        {"r": {"h": bytes(31)}},
        {"r": {"h": bytes(32)}, "l1": {"h": bytes(33)}},
        {"r": {"h": bytes(32)}, "l1": {"h": b""}},
        {"r": {"h": bytes(32)}, "l2": {"h": bytes(32)}},
        {"r": {"h": bytes(32)}, "x": 1},
        {"r": {"h": bytes(32), "g": 1}},
    ):
        with pytest.raises(DecodeError):
            HashBranch.from_cbor(bad)
