"""Hypothesis round trips for the crypto and cryptree value types."""

from __future__ import annotations

import calendar

from hypothesis import given
from hypothesis import strategies as st

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import CODEC_RAW, Cid
from peergos_node.crypto.bat import Bat, BatId, BatWithId, create_raw_block_prefix, parse_raw_block_prefix
from peergos_node.crypto.block_auth import (
    BlockAuth,
    aws_datetime,
    generate_auth,
    pack_datetime,
    parse_aws_datetime,
    unpack_datetime,
    verify_block_auth,
)
from peergos_node.crypto.boxing import BoxingKeyPair, Curve25519SecretKey
from peergos_node.crypto.login import SecretGenerationAlgorithm
from peergos_node.crypto.pow import ProofOfWork
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import CipherText, PaddedCipherText, SymmetricKey
from peergos_node.cryptree.capabilities import AbsoluteCapability, capability_from_cbor
from peergos_node.cryptree.secret_link import LINK_PASSWORD_ALPHABET, SecretLink
from tests.helpers.crypto_strategies import (
    bat_ids,
    bats,
    bytes32,
    capabilities,
    key_hashes,
    signing_pairs,
    symmetric_keys,
)
from tests.helpers.fuzz import round_trip_settings

MIN_TIME = calendar.timegm((2000, 1, 1, 0, 0, 0))
MAX_TIME = calendar.timegm((2031, 12, 31, 23, 59, 59))
PEER = b"\x00\x24\x08\x01\x12\x20" + bytes(range(32))


@round_trip_settings
@given(symmetric_keys, st.binary(max_size=2000), st.sampled_from([1, 16, 64, 4096]), st.integers(0, 2**32))
def test_symmetric_round_trips(key: SymmetricKey, payload: bytes, block: int, seed: int) -> None:
    assert SymmetricKey.deserialize(key.serialize()) == key
    plaintext = dag_cbor.encode(payload)
    ct = CipherText.encrypt(key, plaintext, DeterministicRng(seed))
    assert CipherText.deserialize(ct.serialize()).decrypt(key) == payload
    padded = PaddedCipherText.encrypt(key, plaintext, block, DeterministicRng(seed))
    assert len(padded.ciphertext) - 16 == -(-len(plaintext) // block) * block
    assert PaddedCipherText.deserialize(padded.serialize()).decrypt(key) == payload


@round_trip_settings
@given(signing_pairs, st.binary(max_size=500))
def test_signing_round_trips(pair: SigningKeyPair, message: bytes) -> None:
    assert pair.public.unsign(pair.sign(message)) == message
    pair.public.verify_detached(pair.signature_only(message), message)
    assert SigningKeyPair.from_string(pair.to_string()) == pair
    h = PublicKeyHash.of(pair.public)
    assert h.inlined_signing_key() == pair.public
    assert PublicKeyHash.parse(str(h)) == h == PublicKeyHash.deserialize(h.serialize())


@round_trip_settings
@given(key_hashes)
def test_key_hash_round_trips(h: PublicKeyHash) -> None:
    assert PublicKeyHash.parse(str(h)) == h == PublicKeyHash.deserialize(h.serialize())


@round_trip_settings
@given(bytes32, st.binary(max_size=300), st.integers(0, 2**32))
def test_curve25519_box_round_trips(secret: bytes, message: bytes, seed: int) -> None:
    recipient = BoxingKeyPair.from_secret(Curve25519SecretKey(secret))
    sender = BoxingKeyPair.random_curve25519(DeterministicRng(seed))
    sealed = recipient.public.encrypt_message_for(message, sender.secret, DeterministicRng(seed))
    assert recipient.secret.decrypt_message(sealed, sender.public) == message
    assert BoxingKeyPair.deserialize(recipient.serialize()) == recipient


@round_trip_settings
@given(bats, bat_ids, st.one_of(st.none(), bat_ids), st.binary(max_size=64))
def test_bat_round_trips(bat: Bat, bat_id: BatId, mirror: BatId | None, payload: bytes) -> None:
    assert Bat.deserialize(bat.serialize()) == bat == Bat.from_string(bat.encode_secret())
    assert BatId.deserialize(bat_id.serialize()) == bat_id
    for with_id in (BatWithId(bat, BatId.sha256(bat)), BatWithId(bat, bat.calculate_id())):
        assert BatWithId.decode(with_id.encode()) == with_id
    block = create_raw_block_prefix(bat, mirror) + payload
    ids, offset = parse_raw_block_prefix(block)
    assert ids == [BatId.inline(bat)] + ([mirror] if mirror else []) and block[offset:] == payload


@round_trip_settings
@given(bats, st.integers(MIN_TIME, MAX_TIME), st.integers(0, 2**31 - 1), bytes32)
def test_block_auth_round_trips(bat: Bat, now: int, expiry: int, block_seed: bytes) -> None:
    text = aws_datetime(now)
    assert parse_aws_datetime(text) == now and unpack_datetime(pack_datetime(text)) == text
    block = Cid.for_block(CODEC_RAW, block_seed)
    auth = generate_auth(bat, block, PEER, now, BatId.sha256(bat), expiry)
    assert BlockAuth.decode(auth.encode()) == auth
    verify_block_auth(auth, block, [BatId.sha256(bat)], PEER, now, [bat])


@round_trip_settings
@given(capabilities)
def test_capability_round_trips(cap: AbsoluteCapability) -> None:
    assert capability_from_cbor(dag_cbor.decode(cap.serialize())) == cap
    assert AbsoluteCapability.from_link(cap.to_link()) == cap
    assert type(cap).deserialize(cap.serialize()) == cap


@round_trip_settings
@given(
    key_hashes,
    st.integers(1, 2**63 - 1),
    st.text(alphabet=LINK_PASSWORD_ALPHABET, min_size=1, max_size=64),
)
def test_secret_link_strings_round_trip(owner: PublicKeyHash, label: int, password: str) -> None:
    link = SecretLink(owner, label, password)
    assert SecretLink.from_link(link.to_link()) == link


@round_trip_settings
@given(
    st.integers(17, 20),
    st.integers(1, 8),
    st.integers(1, 16),
    st.sampled_from([64, 96]),
    st.text(max_size=80),
    st.integers(0, 2**64 - 1),
)
def test_algorithm_and_pow_round_trips(m: int, r: int, p: int, o: int, salt: str, counter: int) -> None:
    alg = SecretGenerationAlgorithm(m, r, p, o, salt)
    assert SecretGenerationAlgorithm.deserialize(alg.serialize()) == alg
    proof = ProofOfWork.of_counter(counter)
    assert ProofOfWork.deserialize(proof.serialize()) == proof and proof.counter == counter
