"""Every cryptree decoder fed arbitrary and mutated bytes raises only DecodeError or BadCiphertext.

A malicious server supplies node and fragment blocks, and a malicious writer chooses what is inside the
encryption, so both layers are fuzzed: the outer bytes (node blocks, payload maps, fragment blocks) and
the decrypted plaintexts (FromBase, FromParent, child lists, file data), each as arbitrary bytes or as a
valid encoding with a few random edits. Whatever decodes must re-encode and decode to an equal value.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from nabu_py.codec import dag_cbor
from nabu_py.multiformats.cid import Cid
from peergos_node.crypto.rng import DeterministicRng
from peergos_node.crypto.symmetric import PaddedCipherText, SymmetricKey
from peergos_node.cryptree.fragments import FragmentedPaddedCipherText
from peergos_node.cryptree.node import (
    CryptreeNode,
    FromBase,
    FromParent,
    NodeWithFragments,
    SymmetricLinkToSigner,
)
from peergos_node.cryptree.properties import FileProperties, HashBranch, HashTree, Thumbnail
from peergos_node.cryptree.relative import ChildrenLinks, NamedRelativeCapability, RelativeCapability
from peergos_node.errors import BadCiphertext, DecodeError
from tests.helpers.cryptree import SIGNER, SampleDir, SampleFile, sample_dir, sample_file
from tests.helpers.fuzz import fuzz_settings

TYPED = (DecodeError, BadCiphertext)
RNG = DeterministicRng("cryptree-fuzz")
SMALL_FILE = sample_file(RNG, b"small file")
BIG_FILE = sample_file(RNG, random.Random(1).randbytes(9000))
SMALL_DIR = sample_dir(RNG, 3)
BIG_DIR = sample_dir(RNG, 30)
SAMPLES: list[SampleFile | SampleDir] = [SMALL_FILE, BIG_FILE, SMALL_DIR, BIG_DIR]
STORE: dict[Cid, bytes] = {f.cid: f.block for s in SAMPLES for f in s.built.fragments}
PROPS = SMALL_FILE.props.with_thumbnail(Thumbnail("image/png", b"\x89PNG")).with_hash(
    HashTree.of_data(b"x").branch(0)
)


def _mutate(sample: bytes, seed: int) -> bytes:
    """1-4 random edits of a valid encoding: bit flip, insertion, deletion or truncation."""
    rnd = random.Random(seed)
    out = bytearray(sample)
    for _ in range(rnd.randint(1, 4)):
        op, pos = rnd.randrange(4), rnd.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            out[pos:pos] = rnd.randbytes(rnd.randint(1, 4))
        elif op == 2:
            del out[pos : pos + rnd.randint(1, 8)]
        else:
            del out[pos:]
    return bytes(out)


def inputs(samples: Sequence[bytes], max_size: int = 400) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, or a valid sample with a few random mutations."""
    mutated = st.tuples(st.sampled_from(list(samples)), st.integers(0, 2**32 - 1)).map(lambda t: _mutate(*t))
    return st.one_of(st.binary(max_size=max_size), mutated)


def _decode_each(data: bytes, decoders: Sequence[Callable[[bytes], Any]]) -> None:
    for decode in decoders:
        try:
            value = decode(data)
        except TYPED:
            continue
        assert type(value).deserialize(value.serialize()) == value


def _read_everything(node: CryptreeNode, key: SymmetricKey) -> None:
    """What a client does with a node: trial decryption, read, then children or data from fetched blocks."""
    node.is_directory(key)
    read = node.read(key)
    read.properties.serialize()
    blocks = [STORE.get(cid) for cid in node.fragments]
    if any(b is None for b in blocks):
        return  # the client could not fetch a fragment the node names
    fetched = [b for b in blocks if b is not None]
    if read.is_directory:
        read.children(fetched)
    else:
        read.data(fetched)


_LINK_SAMPLES = [
    SMALL_DIR.children[0].serialize(),
    SMALL_DIR.children[0].cap.serialize(),
    SMALL_DIR.next_chunk.serialize(),
    ChildrenLinks.of(SMALL_DIR.children).serialize(),
    PROPS.serialize(),
    SMALL_DIR.props.serialize(),
    HashTree.of_data(b"x").serialize(),
]


@fuzz_settings
@given(inputs(_LINK_SAMPLES, max_size=600))
def test_link_and_property_decoders(data: bytes) -> None:
    _decode_each(
        data,
        [
            RelativeCapability.deserialize,
            NamedRelativeCapability.deserialize,
            ChildrenLinks.deserialize,
            FileProperties.deserialize,
            HashBranch.deserialize,
            HashTree.deserialize,
            FromBase.deserialize,
            FromParent.deserialize,
            SymmetricLinkToSigner.deserialize,
        ],
    )


_PAYLOADS = [s.built.node.payload.serialize() for s in SAMPLES]


@fuzz_settings
@given(inputs(_PAYLOADS, max_size=300))
def test_payload_decoder_and_decryption(data: bytes) -> None:
    try:
        payload = FragmentedPaddedCipherText.deserialize(data)
    except TYPED:
        return
    assert FragmentedPaddedCipherText.deserialize(payload.serialize()) == payload
    blocks = [STORE.get(cid) for cid in payload.fragments]
    if any(b is None for b in blocks):
        return
    for key in (BIG_FILE.data_key, BIG_DIR.rbase_key):
        try:
            payload.decrypt(key, [b for b in blocks if b is not None])
        except TYPED:
            pass


_NODES = [s.built.block for s in SAMPLES]
_KEYS = [SMALL_FILE.base_key, BIG_FILE.base_key, SMALL_DIR.rbase_key, BIG_DIR.rbase_key, SMALL_DIR.parent_key]


@fuzz_settings
@given(inputs(_NODES, max_size=500), st.sampled_from(_KEYS))
def test_node_parse_and_read(data: bytes, key: SymmetricKey) -> None:
    try:
        node = CryptreeNode.parse(data)
    except TYPED:
        return
    assert CryptreeNode.parse(node.serialize()) == node
    try:
        _read_everything(node, key)
    except TYPED:
        pass


_FRAGMENT = BIG_FILE.built.fragments[0]


@fuzz_settings
@given(st.integers(0, 2**32 - 1))
def test_mutated_fragment_blocks(seed: int) -> None:
    """A fragment block altered in transit (or a different block entirely) never decrypts."""
    mutated = _mutate(_FRAGMENT.block, seed)
    try:
        data = BIG_FILE.built.node.data(BIG_FILE.data_key, [mutated])
    except TYPED:
        return
    assert mutated == _FRAGMENT.block and data == random.Random(1).randbytes(9000)


def _with_part(sample: SampleFile | SampleDir, part: str, plaintext: bytes) -> CryptreeNode:
    """The sample node with one part replaced by `plaintext` encrypted under the right key."""
    node = sample.built.node
    if isinstance(sample, SampleFile):
        base, parent, payload_key = sample.base_key, sample.base_key, sample.data_key
    else:
        base, parent, payload_key = sample.rbase_key, sample.parent_key, sample.rbase_key
    if part == "b":
        return CryptreeNode(
            PaddedCipherText.encrypt(base, plaintext, 64, RNG), node.from_parent, node.payload, node.bats
        )
    if part == "p":
        return CryptreeNode(
            node.from_base, PaddedCipherText.encrypt(parent, plaintext, 16, RNG), node.payload, node.bats
        )
    payload, fragments = FragmentedPaddedCipherText.build(payload_key, plaintext, rng=RNG)
    STORE.update((f.cid, f.block) for f in fragments)
    return NodeWithFragments(node.with_payload(payload), tuple(fragments)).node


def _plaintexts(sample: SampleFile | SampleDir, part: str) -> list[bytes]:
    if isinstance(sample, SampleFile):
        key, parent = sample.base_key, sample.base_key
    else:
        key, parent = sample.rbase_key, sample.parent_key
    node = sample.built.node
    if part == "b":
        return [dag_cbor.encode(dag_cbor.decode(node.from_base.decrypt_bytes(key), allow_zero_padding=True))]
    if part == "p":
        return [
            dag_cbor.encode(dag_cbor.decode(node.from_parent.decrypt_bytes(parent), allow_zero_padding=True))
        ]
    if isinstance(sample, SampleFile):
        return [dag_cbor.encode(b"data"), dag_cbor.encode(b"")]
    return [ChildrenLinks.of(sample.children[:3]).serialize(), dag_cbor.encode([])]


_PARTS = [(s, part) for s in (SMALL_FILE, SMALL_DIR) for part in ("b", "p", "d")]
_PLAINTEXTS = [(i, p) for i, (s, part) in enumerate(_PARTS) for p in _plaintexts(s, part)]


@fuzz_settings
@given(st.sampled_from(_PLAINTEXTS), st.integers(0, 2**32 - 1), st.binary(max_size=200), st.booleans())
def test_decrypted_plaintexts_from_a_malicious_writer(
    sample: tuple[int, bytes], seed: int, arbitrary: bytes, use_arbitrary: bool
) -> None:
    index, valid = sample
    owner, part = _PARTS[index]
    plaintext = arbitrary if use_arbitrary else _mutate(valid, seed)
    node = _with_part(owner, part, plaintext)
    key = owner.base_key if isinstance(owner, SampleFile) else owner.rbase_key
    try:
        _read_everything(node, key)
    except TYPED:
        pass
    try:
        node.properties(key)
        if isinstance(owner, SampleDir):
            node.read(key).signer(owner.wbase_key, SIGNER)
    except TYPED:
        pass
