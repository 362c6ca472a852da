"""`/peergos/v0/core/*` bodies: exact Java framing and strict decoding."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import pytest

from peergos_node.corenode.claims import serialize_chain
from peergos_node.corenode.java_io import DataWriter
from peergos_node.corenode.messages import (
    DifficultyResponse,
    GetChainRequest,
    GetPublicKeyResponse,
    GetUsernameRequest,
    GetUsernameResponse,
    GetUserSnapshotsRequest,
    MigrateUserRequest,
    SignupRequest,
    StartMirrorRequest,
    UpdateChainRequest,
    decode_bool,
    decode_chain_response,
    decode_snapshots,
    decode_usernames_gzip,
    encode_bool,
    encode_chain_response,
    encode_snapshots,
    encode_usernames_gzip,
    parse_core_path,
)
from peergos_node.corenode.oplog import OpLog
from peergos_node.corenode.snapshot import UserSnapshot
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.errors import DecodeError
from tests.helpers.pki import initial, key_change, login_data, mirror_bat, peer, signer

PROOF = ProofOfWork.of_counter(42)


def test_get_chain_request_and_response() -> None:
    body = GetChainRequest("alice").encode()
    assert body == bytes.fromhex("00000005616c696365")
    assert GetChainRequest.decode(body) == GetChainRequest("alice")
    chain = key_change(initial(), "alice", "alice2")
    assert decode_chain_response(encode_chain_response(chain)) == chain
    assert encode_chain_response(()) == b"\x80"
    assert decode_chain_response(b"\x80") == ()


def test_signup_request_layout() -> None:
    (link,) = initial()
    oplog = OpLog((), (login_data(), b"sig"), (mirror_bat(), b"auth"))
    req = SignupRequest("alice", link, oplog, PROOF, "token")
    expected = (
        DataWriter()
        .write_string("alice")
        .write_byte_array(link.serialize())
        .write_byte_array(oplog.serialize())
        .write_byte_array(PROOF.serialize())
        .write_string("token")
        .to_bytes()
    )
    assert req.encode() == expected
    assert SignupRequest.decode(expected) == req
    assert req.pow_data() == serialize_chain((link,))


def test_update_chain_request() -> None:
    chain = key_change(initial(), "alice", "alice2")
    req = UpdateChainRequest("alice", chain, PROOF, "")
    assert UpdateChainRequest.decode(req.encode()) == req
    assert req.pow_data() == serialize_chain(chain)


def test_difficulty_response_bytes() -> None:
    assert DifficultyResponse().encode() == b"\x01"
    assert DifficultyResponse(19).encode() == bytes.fromhex("0000000013")
    assert DifficultyResponse.decode(b"\x01").ok
    assert DifficultyResponse.decode(bytes.fromhex("0000000013")) == DifficultyResponse(19)


def test_get_public_key_response() -> None:
    owner = signer("alice").public_key_hash
    present = GetPublicKeyResponse(owner).encode()
    assert present == b"\x01" + len(owner.serialize()).to_bytes(4, "big") + owner.serialize()
    assert GetPublicKeyResponse.decode(present) == GetPublicKeyResponse(owner)
    assert GetPublicKeyResponse(None).encode() == b"\x00"
    assert GetPublicKeyResponse.decode(b"\x00") == GetPublicKeyResponse(None)


def test_get_username() -> None:
    owner = signer("alice").public_key_hash
    req = GetUsernameRequest(owner)
    assert req.encode() == DataWriter().write_byte_array(owner.serialize()).to_bytes()
    assert GetUsernameRequest.decode(req.encode()) == req
    assert GetUsernameResponse.decode(GetUsernameResponse("alice").encode()).username == "alice"
    with pytest.raises(DecodeError):
        GetUsernameResponse.decode(GetUsernameResponse("a" * 65).encode())


def test_usernames_gzip() -> None:
    names = ["alice", "bob", "carol-9"]
    body = encode_usernames_gzip(names)
    assert gzip.decompress(body) == b'["alice","bob","carol-9"]'
    assert decode_usernames_gzip(body) == names
    bomb = gzip.compress(b"[" + b'"a",' * 100_000 + b'"a"]')
    with pytest.raises(DecodeError, match="more than"):
        decode_usernames_gzip(bomb, max_size=10_000)
    for bad in (b"not gzip", body[:-3], body + b"x", gzip.compress(b'{"a":1}'), gzip.compress(b"[1]")):
        with pytest.raises(DecodeError):
            decode_usernames_gzip(bad)


@pytest.mark.parametrize("with_bat", [True, False])
def test_migrate_user_request(with_bat: bool) -> None:
    chain = key_change(initial(), "alice", "alice2")
    req = MigrateUserRequest(
        "alice", chain, peer("home"), mirror_bat() if with_bat else None, 1_700_000_000, 123_456, True
    )
    body = req.encode()
    assert MigrateUserRequest.decode(body) == req
    w = DataWriter().write_string("alice").write_byte_array(serialize_chain(chain))
    w.write_byte_array(peer("home").to_bytes()).write_boolean(with_bat)
    if with_bat:
        w.write_byte_array(mirror_bat().serialize())
    assert body == w.write_long(1_700_000_000).write_long(123_456).write_boolean(True).to_bytes()


def test_snapshots_and_mirror() -> None:
    req = GetUserSnapshotsRequest("", mirror_bat("instance"), 0)
    assert GetUserSnapshotsRequest.decode(req.encode()) == req
    snaps = (UserSnapshot("alice", signer("alice").public_key_hash, {}),)
    assert decode_snapshots(encode_snapshots(snaps)) == snaps
    mirror = StartMirrorRequest("alice", mirror_bat(), b"signed time", PROOF)
    assert StartMirrorRequest.decode(mirror.encode()) == mirror
    assert mirror.pow_data() == b"alice"
    assert decode_bool(encode_bool(True)) is True and encode_bool(False) == b"\x00"


def test_parse_core_path() -> None:
    assert parse_core_path("/peergos/v0/core/getChain") == ("getChain", "")
    assert parse_core_path("peergos/v0/core/getUsernamesGzip/al") == ("getUsernamesGzip", "al")
    with pytest.raises(DecodeError):
        parse_core_path("/api/v0/core/getChain")


BODIES: list[tuple[str, bytes, Callable[[bytes], Any]]] = [
    ("getChain", GetChainRequest("alice").encode(), GetChainRequest.decode),
    ("signup", SignupRequest("alice", initial()[0], OpLog(), PROOF).encode(), SignupRequest.decode),
    ("updateChain", UpdateChainRequest("alice", initial(), PROOF).encode(), UpdateChainRequest.decode),
    ("difficulty", DifficultyResponse(12).encode(), DifficultyResponse.decode),
    ("getPublicKey", GetPublicKeyResponse(signer("a").public_key_hash).encode(), GetPublicKeyResponse.decode),
    ("getUsername", GetUsernameRequest(signer("a").public_key_hash).encode(), GetUsernameRequest.decode),
    (
        "migrateUser",
        MigrateUserRequest("alice", initial(), peer("h"), None, 0, 0, False).encode(),
        MigrateUserRequest.decode,
    ),
    ("mirror", StartMirrorRequest("alice", mirror_bat(), b"", PROOF).encode(), StartMirrorRequest.decode),
]


@pytest.mark.parametrize(("name", "body", "decode"), BODIES, ids=[n for n, _, _ in BODIES])
def test_bodies_refuse_trailing_and_truncated_bytes(
    name: str, body: bytes, decode: Callable[[bytes], Any]
) -> None:
    decode(body)
    with pytest.raises(DecodeError):
        decode(body + b"\x00")
    with pytest.raises(DecodeError):
        decode(body[:-1])


def test_oversized_fields_are_refused_before_reading() -> None:
    too_long_name = DataWriter().write_int(1025).write_raw(b"a" * 1025).to_bytes()
    with pytest.raises(DecodeError, match="length 1025"):
        GetChainRequest.decode(too_long_name)
    big_proof = (
        DataWriter()
        .write_string("alice")
        .write_byte_array(initial()[0].serialize())
        .write_byte_array(OpLog().serialize())
        .write_byte_array(b"\x00" * 101)
        .write_string("")
        .to_bytes()
    )
    with pytest.raises(DecodeError, match="proof of work length 101"):
        SignupRequest.decode(big_proof)
    huge_chain = DataWriter().write_string("alice").write_int(4 * 1024 * 1024 + 1).to_bytes()
    with pytest.raises(DecodeError):
        UpdateChainRequest.decode(huge_chain)
