"""Peer id parsing and printing (nabu_py/p2p/peer_id.py; libp2p specs peer-ids/peer-ids.md)."""

from __future__ import annotations

import hashlib

import pytest

from nabu_py.errors import DecodeError
from nabu_py.p2p.peer_id import PeerId

# Ed25519 key of the libp2p TLS spec's first test vector and its peer id
ED25519_KEY = bytes.fromhex("08011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b9")
ED25519_ID = "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv"
SHA256_ID = "QmfXbAwNjJLXfesgztEHe8HwgVDCMMpZ9Eax1HYq6hn9uE"  # an ECDSA (sha2-256) peer id
SECP256K1_ID = "16Uiu2HAkutTMoTzDw1tCvSRtu6YoixJwS46S1ZFxW8hSx9fWHiPs"


def test_identity_multihash_for_small_keys() -> None:
    pid = PeerId.from_public_key(ED25519_KEY)
    assert str(pid) == ED25519_ID
    assert pid.to_bytes() == b"\x00\x24" + ED25519_KEY
    assert pid.public_key_proto() == ED25519_KEY


def test_sha256_multihash_for_large_keys() -> None:
    key = b"\x08\x00\x12\x80\x02" + bytes(256)
    pid = PeerId.from_public_key(key)
    assert pid.to_bytes() == b"\x12\x20" + hashlib.sha256(key).digest()
    assert pid.public_key_proto() is None
    assert str(pid).startswith("Qm")


@pytest.mark.parametrize("text", [ED25519_ID, SHA256_ID, SECP256K1_ID])
def test_every_text_form_round_trips(text: str) -> None:
    pid = PeerId.parse(text)
    assert str(pid) == pid.to_base58() == text
    for form in (pid.to_cid_string(), pid.to_cid_string("base36"), pid.to_cid_string("base58btc")):
        assert PeerId.parse(form) == pid
    assert PeerId.parse(pid.to_cid_string().upper().replace("B", "B", 1)) == pid  # base32 upper: 'B...'
    assert PeerId.from_bytes(pid.to_bytes()) == pid
    assert hash(PeerId.parse(text)) == hash(pid)


def test_known_cid_forms() -> None:
    pid = PeerId.parse(ED25519_ID)
    assert pid.to_cid_string().startswith("bafzaa")
    assert pid.to_cid_string("base36").startswith("k51qzi5uqu5")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        "12D3KooW0OIl",  # characters outside base58btc
        "Qm" + "1" * 300,  # too long
        "QmfXbAwNjJLXfesgztEHe8HwgVDCMMpZ9Eax1HYq6hn9u",  # truncated multihash
        "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",  # a CID, but raw codec
        "kxyz!",  # invalid base36
        "bafzaajaiaejca",  # libp2p-key CID with a truncated multihash
        "zQm",  # base58 CID form that is not a CID
        "x12D3Koo",  # unknown multibase prefix
        "Bafzaajaiaejcb",  # mixed case base32
    ],
)
def test_garbage_is_a_decode_error(garbage: str) -> None:
    with pytest.raises(DecodeError):
        PeerId.parse(garbage)


def test_only_identity_and_sha256_multihashes() -> None:
    with pytest.raises(DecodeError):
        PeerId(b"\x13\x40" + bytes(64))  # sha2-512
    with pytest.raises(DecodeError):
        PeerId(b"\x00\x2b" + bytes(43))  # identity over the 42-byte bound
    with pytest.raises(DecodeError):
        PeerId(b"\x12\x20" + bytes(32) + b"\x00")  # trailing byte


def test_immutable_and_ordered() -> None:
    a, b = PeerId.parse(ED25519_ID), PeerId.parse(SHA256_ID)
    with pytest.raises(AttributeError):
        a._mh = b""  # type: ignore[misc]
    assert sorted([b, a]) == sorted([a, b])
    assert repr(a) == f"PeerId('{ED25519_ID}')"
