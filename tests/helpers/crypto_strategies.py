"""Hypothesis strategies for peergos_node.crypto and cryptree values."""

from __future__ import annotations

from hypothesis import strategies as st

from peergos_node.crypto.bat import Bat, BatId
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import SigningKeyPair
from peergos_node.crypto.symmetric import SymmetricKey
from peergos_node.cryptree.capabilities import AbsoluteCapability

bytes32 = st.binary(min_size=32, max_size=32)
nonces = st.binary(min_size=24, max_size=24)
symmetric_keys = st.builds(SymmetricKey, bytes32, st.booleans())
signing_pairs = st.builds(SigningKeyPair.from_seed, bytes32)
key_hashes = st.one_of(
    signing_pairs.map(lambda p: PublicKeyHash.of(p.public)),
    st.binary(min_size=37, max_size=200).map(PublicKeyHash.of_key_cbor),
)
bats = st.builds(Bat, bytes32)
bat_ids = st.one_of(bats.map(BatId.inline), bats.map(BatId.sha256), bats.map(Bat.calculate_id))
read_capabilities = st.builds(
    AbsoluteCapability, key_hashes, key_hashes, bytes32, st.one_of(st.none(), bats), symmetric_keys
)
capabilities = st.one_of(
    read_capabilities,
    st.builds(lambda cap, key: cap.with_write_key(key), read_capabilities, symmetric_keys),
)
