"""S3 SigV4 block auth: time packing, BlockAuth CBOR, create and verify."""

from __future__ import annotations

import pytest

from nabu_py.multiformats.cid import CODEC_LIBP2P_KEY, CODEC_RAW, Cid
from peergos_node.crypto.bat import Bat, BatId
from peergos_node.crypto.block_auth import (
    BlockAuth,
    allow_read,
    aws_datetime,
    compute_signature,
    generate_auth,
    pack_datetime,
    parse_aws_datetime,
    requester_host,
    unpack_datetime,
    verify_block_auth,
)
from peergos_node.errors import AuthError, DecodeError

BAT = Bat(bytes(range(32)))
MIRROR = Bat(bytes(range(1, 33)))
BLOCK = Cid.for_block(CODEC_RAW, b"block")
PEER = Cid.v1(CODEC_LIBP2P_KEY, b"\x00\x24\x08\x01\x12\x20" + bytes(range(32)))
OTHER_PEER = Cid.v1(CODEC_LIBP2P_KEY, b"\x00\x24\x08\x01\x12\x20" + bytes(32))
NOW = parse_aws_datetime("20250102T030405Z")


def test_datetime_helpers() -> None:
    assert aws_datetime(NOW) == "20250102T030405Z"
    assert NOW == 1735787045
    packed = pack_datetime("20250102T030405Z")
    assert packed == 5 | (4 << 6) | (3 << 12) | (2 << 17) | (1 << 22) | (25 << 26)
    assert unpack_datetime(packed) == "20250102T030405Z"
    assert unpack_datetime(pack_datetime("20311231T235959Z")) == "20311231T235959Z"
    with pytest.raises(ValueError):
        pack_datetime("20320101T000000Z")


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-02T03:04:05Z",
        "20250102T030405",
        "20251302T030405Z",
        "20250230T000000Z",
        "20250102T240000Z",
        "2025010\uff12T030405Z",
        "00000101T000000Z",
    ],
)
def test_bad_datetimes(text: str) -> None:
    with pytest.raises(DecodeError):
        parse_aws_datetime(text)


@pytest.mark.parametrize(
    "packed", [-1, 1 << 31, (13 << 22) | (1 << 17), (2 << 22) | (30 << 17), 60 | (1 << 22) | (1 << 17)]
)
def test_bad_packed_times(packed: int) -> None:
    with pytest.raises(DecodeError):
        unpack_datetime(packed)


def test_requester_host_is_bare_multihash_base58() -> None:
    assert requester_host(PEER) == requester_host(PEER.multihash)
    assert requester_host(PEER).startswith("12D3KooW")
    with pytest.raises(DecodeError):
        requester_host(b"\x12")


def test_auth_round_trip_and_verification_via_mirror_bat() -> None:
    bat_id = BatId.sha256(MIRROR)
    auth = generate_auth(MIRROR, BLOCK, PEER, NOW, bat_id)
    assert auth.expiry_seconds == 300 and auth.datetime == "20250102T030405Z"
    assert BlockAuth.decode(auth.encode()) == auth
    assert auth.expires_at == NOW + 300
    verify_block_auth(auth, BLOCK, [BatId.inline(BAT), bat_id], PEER, NOW, [BAT, MIRROR])
    verify_block_auth(auth, BLOCK, [bat_id], PEER, NOW + 300, [MIRROR])


def test_auth_with_inline_bat_needs_no_mirror() -> None:
    auth = generate_auth(BAT, BLOCK, PEER, NOW, BatId.sha256(MIRROR))
    verify_block_auth(auth, BLOCK, [BatId.inline(BAT)], PEER, NOW)


@pytest.mark.parametrize(
    ("block", "ids", "peer", "now", "mirrors"),
    [
        (BLOCK, [BatId.sha256(MIRROR)], PEER, NOW + 301, [MIRROR]),  # expired
        (BLOCK, [BatId.sha256(MIRROR)], PEER, NOW - 3601, [MIRROR]),  # from the future
        (BLOCK, [BatId.sha256(MIRROR)], OTHER_PEER, NOW, [MIRROR]),  # replayed by another node
        (Cid.for_block(CODEC_RAW, b"other"), [BatId.sha256(MIRROR)], PEER, NOW, [MIRROR]),
        (BLOCK, [BatId.sha256(MIRROR)], PEER, NOW, []),  # mirror BAT unknown here
        (BLOCK, [BatId.sha256(MIRROR)], PEER, NOW, [BAT]),  # a BAT without that id
        (BLOCK, [MIRROR.calculate_id()], PEER, NOW, [MIRROR]),  # block lists another id than auth.b
        (BLOCK, [BatId.inline(BAT)], PEER, NOW, [MIRROR]),  # inline BAT did not sign
        (BLOCK, [], PEER, NOW, [MIRROR]),
    ],
)
def test_verification_refusals(block: Cid, ids: list[BatId], peer: Cid, now: int, mirrors: list[Bat]) -> None:
    auth = generate_auth(MIRROR, BLOCK, PEER, NOW, BatId.sha256(MIRROR))
    with pytest.raises(AuthError):
        verify_block_auth(auth, block, ids, peer, now, mirrors)


def test_invalid_requester_is_an_auth_error() -> None:
    auth = generate_auth(MIRROR, BLOCK, PEER, NOW, BatId.sha256(MIRROR))
    with pytest.raises(AuthError):
        verify_block_auth(auth, BLOCK, [BatId.sha256(MIRROR)], b"\x12\x20", NOW, [MIRROR])


def test_allow_read_hook() -> None:
    ids = [BatId.inline(BAT)]
    auth = generate_auth(BAT, BLOCK, PEER, NOW, BatId.sha256(BAT)).encode()
    assert allow_read(BLOCK, [], PEER, None, NOW)  # public block
    assert allow_read(BLOCK, ids, PEER, auth, NOW)
    assert not allow_read(BLOCK, ids, PEER, None, NOW)
    assert not allow_read(BLOCK, ids, PEER, "", NOW)
    assert not allow_read(BLOCK, ids, PEER, "zz", NOW)
    assert not allow_read(BLOCK, ids, PEER, auth[:-2], NOW)
    assert not allow_read(BLOCK, ids, OTHER_PEER, auth, NOW)


def test_block_auth_rejects_bad_fields() -> None:
    auth = generate_auth(BAT, BLOCK, PEER, NOW, BatId.sha256(BAT))
    good = auth.to_cbor()
    for change in ({"b": BatId.inline(BAT).to_cbor()}, {"s": b"x" * 31}, {"e": -1}, {"t": 1 << 40}, {"x": 1}):
        with pytest.raises(DecodeError):
            BlockAuth.from_cbor({**good, **change})
    with pytest.raises(ValueError):
        BlockAuth(auth.signature, 300, auth.datetime, BatId.inline(BAT))
    with pytest.raises(ValueError):
        generate_auth(BAT, BLOCK, PEER, NOW, BatId.inline(BAT))


def test_signature_depends_on_every_signed_input() -> None:
    host = requester_host(PEER)
    base = compute_signature(BAT, BLOCK, host, "20250102T030405Z")
    assert base != compute_signature(MIRROR, BLOCK, host, "20250102T030405Z")
    assert base != compute_signature(BAT, Cid.for_block(CODEC_RAW, b"x"), host, "20250102T030405Z")
    assert base != compute_signature(BAT, BLOCK, requester_host(OTHER_PEER), "20250102T030405Z")
    assert base != compute_signature(BAT, BLOCK, host, "20250102T030406Z")
