"""Claims and links: payload layout, signatures, strict CBOR decoding."""

from __future__ import annotations

import pytest

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_DAG_CBOR, Cid
from peergos_node.corenode.chain import verify_claim
from peergos_node.corenode.claims import (
    MAX_CHAIN_LINKS,
    Claim,
    UserPublicKeyLink,
    claim_payload,
    create_chain,
    create_initial,
    deserialize_chain,
    key_change_proof,
    parse_claim_payload,
    serialize_chain,
)
from peergos_node.corenode.dates import LocalDate
from peergos_node.corenode.errors import InvalidChain
from peergos_node.corenode.java_io import DataWriter
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.errors import DecodeError
from tests.helpers.pki import EXPIRY, peer, signer


def test_payload_layout() -> None:
    p = peer("home")
    expected = (
        bytes.fromhex("00000005")
        + b"alice"
        + bytes.fromhex("0000000a")
        + b"2026-05-01"
        + bytes.fromhex("00000001")
        + len(p.to_bytes()).to_bytes(4, "big")
        + p.to_bytes()
    )
    assert claim_payload("alice", EXPIRY, (p,)) == expected
    assert parse_claim_payload(expected) == ("alice", EXPIRY, (p,))
    retired = claim_payload("alice", LocalDate.MAX, ())
    assert retired == bytes.fromhex("00000005") + b"alice" + bytes.fromhex(
        "00000010"
    ) + b"+999999999-12-31" + bytes(4)


@pytest.mark.parametrize(
    "payload",
    [
        claim_payload("alice", EXPIRY, ()) + b"\x00",  # trailing byte
        DataWriter().write_string("alice").write_string("2026-05-01").write_int(-1).to_bytes(),
        DataWriter().write_string("alice").write_string("2026-05-01").write_int(17).to_bytes(),
        DataWriter().write_string("alice").write_string("2026-05-01").write_int(1).to_bytes(),  # truncated
        DataWriter().write_string("alice").write_string("2026-5-1").write_int(0).to_bytes(),
        DataWriter().write_string("a" * 65).write_string("2026-05-01").write_int(0).to_bytes(),
        DataWriter()
        .write_string("alice")
        .write_string("2026-05-01")
        .write_int(1)
        .write_byte_array(b"\x01" * 101)
        .to_bytes(),
        DataWriter()
        .write_string("alice")
        .write_string("2026-05-01")
        .write_int(1)
        .write_byte_array(b"\x05\x06")
        .to_bytes(),
    ],
)
def test_bad_payloads_are_decode_errors(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_claim_payload(payload)


def test_claim_signature_and_cbor() -> None:
    s = signer("alice")
    claim = Claim.build("alice", s.secret, EXPIRY, (peer("home"),))
    assert s.public_key_hash.inlined_signing_key().unsign(claim.signed_contents) == claim.payload
    assert claim.to_cbor() == ["alice", "2026-05-01", [peer("home").to_bytes()], claim.signed_contents]
    assert Claim.deserialize(claim.serialize()) == claim
    verify_claim(claim, s.public_key_hash)
    with pytest.raises(InvalidChain, match="signature"):
        verify_claim(claim, signer("mallory").public_key_hash)


@pytest.mark.parametrize(
    "value",
    [
        ["alice", "2026-05-01", [], b"x", "extra"],
        ["alice", "2026-05-01", []],
        ["alice", "+2026-05-01", [], b"x"],
        ["alice", "2026-05-01", [b"\x01\x02"], b"x"],
        ["alice", "2026-05-01", [b"\x01" * 101], b"x"],
        ["alice", "2026-05-01", [peer("p").to_bytes()] * 17, b"x"],
        ["a" * 65, "2026-05-01", [], b"x"],
        [b"alice", "2026-05-01", [], b"x"],
        ["alice", "2026-05-01", [], "x"],
        {"username": "alice"},
    ],
)
def test_claim_decoding_is_strict(value: object) -> None:
    with pytest.raises(DecodeError):
        Claim.deserialize(dag_cbor.encode(value))


def test_link_cbor_and_strictness() -> None:
    (link,) = create_initial(signer("alice"), "alice", EXPIRY, (peer("home"),))
    m = link.to_cbor()
    assert set(m) == {"owner", "claim"}
    assert UserPublicKeyLink.deserialize(link.serialize()) == link
    with pytest.raises(DecodeError):
        UserPublicKeyLink.deserialize(dag_cbor.encode({**m, "extra": 1}))
    with pytest.raises(DecodeError):
        UserPublicKeyLink.deserialize(dag_cbor.encode({**m, "keychange": "not bytes"}))
    with pytest.raises(DecodeError):
        UserPublicKeyLink.deserialize(dag_cbor.encode({**m, "keychange": None}))
    with pytest.raises(DecodeError):
        UserPublicKeyLink.deserialize(dag_cbor.encode({"claim": m["claim"]}))
    with pytest.raises(DecodeError):
        UserPublicKeyLink.deserialize(dag_cbor.encode({**m, "owner": b"not a link"}))


def test_create_chain_shape_and_proof() -> None:
    old, new = signer("alice"), signer("alice2")
    link0, link1 = create_chain(old, new, "alice", EXPIRY, (peer("home"),))
    assert link0.owner == old.public_key_hash and link1.owner == new.public_key_hash
    assert link0.claim.expiry == LocalDate.MAX and link0.claim.storage_providers == ()
    assert link1.claim.expiry == EXPIRY and link1.claim.storage_providers == (peer("home"),)
    assert link1.key_change_proof is None
    assert link0.key_change_proof == key_change_proof(old.secret, new.public_key_hash)
    signed = old.public_key_hash.inlined_signing_key().unsign(link0.key_change_proof)
    assert signed == new.public_key_hash.serialize()


def test_chain_codec() -> None:
    chain = create_initial(signer("alice"), "alice", EXPIRY, (peer("home"),))
    data = serialize_chain(chain)
    assert data[0] == 0x81
    assert deserialize_chain(data) == chain
    assert deserialize_chain(dag_cbor.encode([])) == ()
    with pytest.raises(DecodeError):
        deserialize_chain(data, max_size=len(data) - 1)
    with pytest.raises(DecodeError):
        deserialize_chain(dag_cbor.encode([chain[0].to_cbor()] * (MAX_CHAIN_LINKS + 1)))
    with pytest.raises(DecodeError):
        deserialize_chain(dag_cbor.encode(chain[0].to_cbor()))


def test_owner_must_be_an_inline_ed25519_key() -> None:
    claim = Claim.build("alice", signer("alice").secret, EXPIRY, (peer("home"),))
    stored_key = PublicKeyHash(Cid.for_block(CODEC_DAG_CBOR, b"a big boxing key"))
    with pytest.raises(InvalidChain, match="inline"):
        verify_claim(claim, stored_key)
